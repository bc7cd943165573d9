"""One scoring contract: ``predict(user, items)`` is ``full_sort_predict(user)[items]`` for every
model the plugin trains, each method, with the text prior on or off (amazon-beauty-sample)."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLE, SMALL_MODEL

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.registry import METHODS, get_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sample_splits(sample_data_path):
    """The sample's training split and one test batch, with the LLM table (built once)."""
    settings = {**SMALL_MODEL, "data_path": str(sample_data_path)}
    config = build_config("SASRec", SAMPLE, config_dict=settings)
    train, _, test = data_preparation(config, create_dataset(config))
    # LLM-ESR's neighbours only serve training: any will do for the scoring contract
    train._dataset.similar_users = torch.ones(train._dataset.user_num, 2, dtype=torch.long)
    return settings, train, next(iter(test))[0]


@pytest.mark.parametrize("prior", [True, False], ids=["prior", "no-prior"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("backbone", ["SASRec", "GRU4Rec", "FMLPRec"])
def test_predict_is_the_full_sort_score_of_each_rows_item(sample_splits, backbone, method, prior):
    settings, train, batch = sample_splits
    config = build_config(
        backbone, SAMPLE, config_dict={**settings, "text_prior": prior}, method=method
    )
    torch.manual_seed(0)
    model = get_model(METHODS[method])(config, train._dataset).eval()
    if prior:  # any item vectors and transition: the contract is about how they are applied
        model.text_prior.item_vectors.normal_()
        model.text_prior.transition.normal_()
        model.text_prior.weight.fill_(12.0)
    items = torch.randint(1, model.n_items, (len(batch),))
    batch[model.ITEM_ID] = items
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        sampled = model.predict(batch)
    torch.testing.assert_close(sampled, full[torch.arange(len(batch)), items], rtol=0, atol=0)
    if prior:  # the prior moved these scores: the contract holds for what it adds too
        model.text_prior.weight.zero_()
        with torch.no_grad():
            assert not torch.equal(model.predict(batch), sampled)
