"""Fusion module: shapes, the gate formula, PCA initialisation and table caching."""

import pytest
import torch

from recbole_faerec.model.fusion import AdaptiveGate, FusedItemEmbedding, pca_initialisation


def _table(n_items: int = 7, dim: int = 12, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    table = torch.randn(n_items, dim)
    table[0] = 0.0
    return table


def test_shapes_and_padding():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0)
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    out = fusion(ids)
    assert out.shape == (2, 3, 4)
    assert torch.all(out[ids == 0] == 0)
    assert fusion.weight.shape == (7, 4)
    assert fusion.projection(fusion.llm_table).shape == (7, 4)
    assert fusion.projection[0].out_features == 6  # llm_dim / 2


def test_gate_has_the_papers_shapes():
    """Eq. 3: W1 is 2d x 2d and W2 is d x 2d (PyTorch stores Linear weights as out x in)."""
    gate = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).gate
    assert gate.w1.weight.shape == (8, 8) and gate.w1.bias.shape == (8,)
    assert gate.w2.weight.shape == (4, 8) and gate.w2.bias.shape == (4,)


def test_gate_formula():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).eval()
    ids = torch.tensor([2, 5])
    e_id = fusion.id_embedding.weight[ids]
    e_llm = fusion.projection(fusion.llm_table[ids])
    g = torch.sigmoid(
        torch.cat([e_id, e_llm], -1) @ fusion.gate.w1.weight.T @ fusion.gate.w2.weight.T
        + fusion.gate.w1.bias @ fusion.gate.w2.weight.T
        + fusion.gate.w2.bias
    )
    expected = g * e_id + (1 - g) * e_llm
    torch.testing.assert_close(fusion(ids), expected)


def test_gate_gradients_are_those_of_the_two_layers():
    """The gate folds W2 W1 into one product: values and the gradients of W1, b1, W2 and b2 equal
    those of applying the two layers one after the other."""
    torch.manual_seed(0)
    gate = AdaptiveGate(hidden_size=3)
    e_id, e_llm = torch.randn(5, 3), torch.randn(5, 3)
    weights = torch.randn(5, 3)
    (gate(e_id, e_llm) * weights).sum().backward()
    folded = [p.grad.clone() for p in gate.parameters()]
    gate.zero_grad()
    two_layers = torch.sigmoid(gate.w2(gate.w1(torch.cat([e_id, e_llm], -1))))
    torch.testing.assert_close(gate(e_id, e_llm), two_layers)
    (two_layers * weights).sum().backward()
    for mine, reference in zip(folded, [p.grad for p in gate.parameters()], strict=True):
        torch.testing.assert_close(mine, reference)


def test_scoring_table_is_the_equal_weight_fusion():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).eval()
    expected = 0.5 * (fusion.id_embedding.weight + fusion.projection(fusion.llm_table))
    torch.testing.assert_close(fusion.weight[1:], expected[1:])
    assert fusion.weight[0].abs().sum() == 0  # padding


@pytest.mark.parametrize(("mode", "which"), [("id", "id"), ("llm", "llm"), ("sum", "mean")])
def test_single_view_and_sum_fusion(mode, which):
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0, fusion=mode).eval()
    ids = torch.tensor([1, 4])
    e_id, e_llm = fusion.views(ids)
    expected = {"id": e_id, "llm": e_llm, "mean": 0.5 * (e_id + e_llm)}[which]
    torch.testing.assert_close(fusion(ids), expected)


def test_pca_initialisation_gives_ordered_uncorrelated_scores():
    table = _table(n_items=50, dim=8)
    init = pca_initialisation(table, 3)
    assert torch.all(init[0] == 0)
    scores = init[1:].double()
    cov = scores.T @ scores / scores.size(0)
    variances = torch.diagonal(cov)
    assert torch.all(variances[:-1] >= variances[1:])
    off = cov - torch.diag(variances)
    assert off.abs().max().item() < 1e-6
    centred = table[1:].double() - table[1:].double().mean(0)
    total = centred.pow(2).sum(1).mean()
    assert variances.sum().item() <= total.item() + 1e-9


def test_pca_initialisation_pads_when_hidden_exceeds_llm_dim():
    init = pca_initialisation(_table(n_items=20, dim=3), 5)
    assert init.shape == (20, 5)
    assert torch.all(init[1:, 3:].std(0) > 0)


def test_fused_ids_start_from_pca():
    table = _table(n_items=30, dim=10)
    fusion = FusedItemEmbedding(table, hidden_size=4)
    torch.testing.assert_close(fusion.id_embedding.weight.data, pca_initialisation(table, 4))


def test_wide_llm_tables_enter_the_projection_as_their_top_components():
    """A table wider than ``llm_input_dim`` is replaced by its top principal component scores:
    the projection reads ``llm_input_dim`` columns, the reduced table's variance is the largest
    any ``llm_input_dim`` directions keep, and the ID table starts from the same PCA."""
    table = _table(n_items=60, dim=10)
    fusion = FusedItemEmbedding(table, hidden_size=3, llm_input_dim=5)
    assert fusion.llm_table.shape == (60, 5)
    assert fusion.projection[0].in_features == 5
    assert torch.all(fusion.llm_table[0] == 0)
    centred = table[1:].double() - table[1:].double().mean(0)
    top5 = torch.linalg.eigvalsh(centred.T @ centred).flip(0)[:5].sum()
    kept = fusion.llm_table[1:].double().pow(2).sum()
    torch.testing.assert_close(kept, top5)
    full = pca_initialisation(table, 3)
    torch.testing.assert_close(fusion.id_embedding.weight.data.abs(), full.abs())
    narrow = FusedItemEmbedding(table, hidden_size=3, llm_input_dim=10)
    torch.testing.assert_close(narrow.llm_table, table)


def _count_projections(fusion: FusedItemEmbedding) -> list[int]:
    rows: list[int] = []
    fusion.projection.register_forward_hook(lambda m, inp, out: rows.append(inp[0].shape[0]))
    return rows


def test_step_projects_each_distinct_item_once():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).train()
    rows = _count_projections(fusion)
    ids = torch.tensor([1, 2, 3])
    with fusion.step(ids):
        fusion(torch.tensor([[1, 2, 2], [3, 1, 0]]))
        fusion.views(torch.tensor([2, 3]))
    assert rows == [3]
    rows.clear()
    with fusion.step(None):
        fusion(torch.tensor([[1, 2]]))
        _ = fusion.weight
    assert rows == [7]


def test_items_outside_the_step_are_computed_on_the_fly():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).train()
    with fusion.step(torch.tensor([1, 2])):
        inside = fusion(torch.tensor([5, 1]))
    e_id, e_llm = fusion.views(torch.tensor([5, 1]))
    torch.testing.assert_close(inside, fusion.fuse(e_id, e_llm))


def test_extra_rows_follow_the_items():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0, extra_rows=1).eval()
    assert fusion.num_embeddings == 8 and fusion.weight.shape == (8, 4)
    torch.testing.assert_close(fusion.weight[7], fusion.extra_embedding.weight[0])
    out = fusion(torch.tensor([[7, 3, 0]]))
    torch.testing.assert_close(out[0, 0], fusion.extra_embedding.weight[0])
    torch.testing.assert_close(out[0, 1], fusion(torch.tensor([3]))[0])
    assert torch.all(out[0, 2] == 0)


def test_eval_table_is_cached_equal_to_fresh_and_rebuilt_after_training():
    fusion = FusedItemEmbedding(_table(), hidden_size=4, dropout=0.0).eval()
    rows = _count_projections(fusion)
    first = fusion.weight
    assert fusion.weight is first
    fusion(torch.tensor([[1, 2, 3]]))
    assert rows == [7]
    fresh = 0.5 * (fusion.id_embedding.weight + fusion.projection(fusion.llm_table))
    torch.testing.assert_close(first[1:], fresh[1:])

    fusion.train()
    optimizer = torch.optim.SGD(fusion.parameters(), lr=0.5)
    with fusion.step(None):
        loss = fusion(torch.tensor([1, 2])).pow(2).sum() + fusion.weight.sum()
    loss.backward()
    optimizer.step()
    fusion.eval()
    rebuilt = fusion.weight
    assert not torch.allclose(rebuilt, first)
    fresh = 0.5 * (fusion.id_embedding.weight + fusion.projection(fusion.llm_table))
    torch.testing.assert_close(rebuilt[1:], fresh[1:])


@pytest.mark.parametrize("target_table", ["mean", "fused", "id"])
def test_target_embedding_follows_target_table(target_table):
    torch.manual_seed(0)
    fusion = FusedItemEmbedding(
        torch.randn(6, 8), hidden_size=4, dropout=0.0, target_table=target_table
    )
    ids = torch.tensor([[1, 2], [0, 5]])
    with fusion.step(torch.tensor([1, 2, 5])):
        got = fusion.target_embedding(ids)
        e_id, e_llm = fusion.views(ids)
        expected = {"mean": 0.5 * (e_id + e_llm), "fused": fusion(ids), "id": e_id}[target_table]
        expected = expected * (ids != 0).unsqueeze(-1)
        torch.testing.assert_close(got, expected)
        rows = fusion.weight[ids]
    torch.testing.assert_close(got, rows * (ids != 0).unsqueeze(-1))
    assert not got[1, 0].any()


def test_layernorm_scoring_table_normalises_the_sum_of_the_views():
    torch.manual_seed(0)
    fusion = FusedItemEmbedding(torch.randn(6, 8), hidden_size=4, dropout=0.0)
    layernorm = FusedItemEmbedding(
        torch.randn(6, 8), hidden_size=4, dropout=0.0, score_table="layernorm"
    )
    layernorm.load_state_dict(fusion.state_dict())
    layernorm.eval()
    e_id, e_llm = layernorm.views()
    total = e_id + e_llm
    expected = (total - total.mean(-1, keepdim=True)) / torch.sqrt(
        total.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(layernorm.weight[1:], expected[1:])
    # Every item vector has the same scale, unlike the mean table.
    norms = layernorm.weight[1:].norm(dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, 2.0), atol=1e-3, rtol=0)


def test_layernorm_scoring_table_shares_a_given_norm():
    norm = torch.nn.LayerNorm(4)
    fusion = FusedItemEmbedding(
        torch.randn(6, 8), hidden_size=4, score_table="layernorm", score_norm=norm
    )
    assert fusion.score_norm is norm
    assert FusedItemEmbedding(torch.randn(6, 8), hidden_size=4).score_norm is None


def test_large_tables_take_the_covariance_route_to_the_same_scores():
    table = _table(n_items=200, dim=12)
    exact = pca_initialisation(table, 5)
    chunked = pca_initialisation(table, 5, svd_max_entries=0)
    signs = torch.sign((exact[1:] * chunked[1:]).sum(0))
    assert torch.all(signs != 0)
    torch.testing.assert_close(chunked * signs, exact, atol=1e-5, rtol=1e-4)


def test_large_tables_are_projected_in_chunks_at_evaluation(monkeypatch):
    import recbole_faerec.model.fusion as fusion_module

    fusion = FusedItemEmbedding(_table(n_items=30, dim=10), hidden_size=4).eval()
    with torch.no_grad():
        whole = fusion.weight.clone()
        monkeypatch.setattr(fusion_module, "CHUNK_ROWS", 7)
        fusion.drop_eval_tables()
        rows = _count_projections(fusion)
        chunked = fusion.weight
    assert rows == [7, 7, 7, 7, 2]
    torch.testing.assert_close(chunked, whole)
