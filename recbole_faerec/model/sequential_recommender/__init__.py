"""Native RecBole sequential backbones added by the plugin (all causal per position)."""

from recbole_faerec.model.sequential_recommender.fmlprec import FMLPRec
from recbole_faerec.model.sequential_recommender.gmlp import gMLP
from recbole_faerec.model.sequential_recommender.lrurec import LRURec

__all__ = ["FMLPRec", "LRURec", "gMLP"]
