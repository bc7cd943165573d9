"""Low-precision training-step products: dtype choice, row buckets, and results close to float32."""

import pytest
import torch

import recbole_faerec.model.precision as precision
from recbole_faerec.model.alignment import item_alignment_loss
from recbole_faerec.model.fusion import BitMaskDropout, FusedItemEmbedding
from recbole_faerec.model.precision import ROW_BUCKET, padded_rows, step_dtype, step_matmul


def _table(n_items: int = 40, dim: int = 16, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    table = torch.nn.functional.normalize(torch.randn(n_items, dim), dim=-1)
    table[0] = 0.0
    return table


def test_step_dtype_follows_the_key_and_the_hardware(monkeypatch):
    assert step_dtype("float32", "cpu") == torch.float32
    assert step_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert step_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    assert step_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match=r"step_precision: 'half' is invalid; expected one of"):
        step_dtype("half", "cpu")


def test_native_bfloat16_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not precision.native_bfloat16("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.native_bfloat16("cpu")
    assert not precision.native_bfloat16("meta")


def test_rows_are_padded_to_the_next_bucket():
    assert ROW_BUCKET == 256
    assert [padded_rows(n) for n in (0, 1, 255, 256, 257, 2400)] == [0, 255, 1, 0, 255, 160]


def test_float32_step_matmul_is_the_plain_product():
    a, b = torch.randn(5, 3), torch.randn(3, 4)
    assert torch.equal(step_matmul(a, b, torch.float32), a @ b)


def test_bfloat16_step_matmul_is_close_to_float32_in_values_and_gradients():
    torch.manual_seed(0)
    a = torch.randn(300, 64, requires_grad=True)
    b = torch.randn(64, 32, requires_grad=True)
    weights = torch.randn(300, 32)
    low = step_matmul(a, b, torch.bfloat16)
    assert low.shape == (300, 32) and low.dtype == torch.float32
    (low * weights).sum().backward()
    grads_low = a.grad.clone(), b.grad.clone()
    a.grad, b.grad = None, None
    exact = a @ b
    (exact * weights).sum().backward()
    # bfloat16 keeps 8 bits of mantissa: relative errors of about 2^-8 per input
    torch.testing.assert_close(low, exact, atol=0.1, rtol=0.02)
    torch.testing.assert_close(grads_low[0], a.grad, atol=0.5, rtol=0.02)
    torch.testing.assert_close(grads_low[1], b.grad, atol=2.0, rtol=0.02)
    assert not torch.equal(low, exact)  # the product really ran in bfloat16


def test_bfloat16_infonce_is_close_to_float32():
    torch.manual_seed(1)
    id_emb, llm_emb = torch.randn(300, 32), torch.randn(300, 32)
    torch.manual_seed(2)
    exact = item_alignment_loss(id_emb, llm_emb, tau=0.05, max_negatives=64)
    torch.manual_seed(2)
    low = item_alignment_loss(id_emb, llm_emb, tau=0.05, max_negatives=64, dtype=torch.bfloat16)
    assert low.item() == pytest.approx(exact.item(), rel=1e-2)
    assert low.item() != exact.item()


def _pair(**kwargs) -> tuple[FusedItemEmbedding, FusedItemEmbedding]:
    exact = FusedItemEmbedding(_table(), hidden_size=8, dropout=0.0, **kwargs)
    low = FusedItemEmbedding(_table(), hidden_size=8, dropout=0.0, step_dtype=torch.bfloat16)
    low.load_state_dict(exact.state_dict())
    return exact, low


def test_bfloat16_step_views_are_close_to_float32_and_padding_rows_stay_out():
    exact, low = _pair()
    ids = torch.tensor([1, 4, 9, 17, 33])
    lookups = torch.tensor([[1, 4, 0], [33, 9, 17]])
    outputs, grads = [], []
    for fusion in (exact, low):
        fusion.train()
        with fusion.step(ids):
            out = fusion(lookups)
            assert fusion._step_views.fused.shape == (ids.numel() + 1, 8)
        (out * torch.arange(8.0)).sum().backward()
        outputs.append(out)
        grads.append(fusion.projection[0].weight.grad)
    assert torch.all(outputs[1][0, 2] == 0)  # the padding item maps to zeros
    torch.testing.assert_close(outputs[1], outputs[0], atol=0.02, rtol=0.02)
    torch.testing.assert_close(grads[1], grads[0], atol=0.05, rtol=0.05)
    assert not torch.equal(outputs[1], outputs[0])


def test_evaluation_is_float32_whatever_the_step_dtype():
    exact, low = _pair()
    exact.eval(), low.eval()
    assert torch.equal(low.weight, exact.weight)
    assert torch.equal(low(torch.tensor([[3, 5]])), exact(torch.tensor([[3, 5]])))


def test_bit_mask_dropout_keeps_one_minus_p_and_rescales_by_the_rounded_rate():
    dropout = BitMaskDropout(0.25).train()  # 0.25 is a multiple of 2**-15: no rounding
    x = torch.ones(200, 101, requires_grad=True)  # 20,200 entries: not a multiple of 4
    torch.manual_seed(0)
    out = dropout(x)
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(0.75, abs=0.01)
    torch.testing.assert_close(out[kept].detach(), torch.full((int(kept.sum()),), 1 / 0.75))
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert torch.equal(dropout.eval()(x), x)
    assert torch.equal(BitMaskDropout(0.0).train()(x), x)
    # p = 0.1 rounds to 3277 / 32768 dropped states: kept entries are scaled by 32768 / 29491
    torch.manual_seed(0)
    out = BitMaskDropout(0.1).train()(torch.ones(400, 500))
    assert (out == 0).float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert out.max().item() == pytest.approx(32768 / 29491, rel=1e-6)


def test_bit_mask_dropout_draws_independent_entries():
    torch.manual_seed(0)
    dropped = BitMaskDropout(0.5).train()(torch.ones(4000, 4)) == 0
    # every column (each of the four 16-bit words of a draw) drops half of its entries
    torch.testing.assert_close(dropped.float().mean(0), torch.full((4,), 0.5), atol=0.03, rtol=0)
    # and neighbouring words of one draw are uncorrelated
    both = (dropped[:, 0] & dropped[:, 3]).float().mean().item()
    assert both == pytest.approx(0.25, abs=0.03)
