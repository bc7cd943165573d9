"""recbole-faerec: FAERec (fusion and alignment enhancement with LLMs) as a RecBole plugin."""

from recbole_faerec import compat

compat.apply()

__version__ = "0.1.0"
