#!/usr/bin/env python3
"""PyTorch/transformers eager decode of the 1B LLaMA shape the SpotServe-J benchmark runs (issue 6).

The reference the CUDA executor is compared with (goal: batch-1 decode >= 1.5x this): a LlamaForCausalLM of
TinyLlama-1.1B's shape (dim 2048, hidden 5632, 22 layers, 32 heads, 4 KV heads, vocab 32000, seq_len 2048,
untied classifier: 1,100,048,384 parameters), random init (normal std 0.02, norms 1), torch.float16 on cuda,
attn_implementation="eager". Per batch size:

* generate: greedy model.generate with a fixed random prompt and max_new_tokens = min_new_tokens = N; the
  prefill is generate with N = 1, and the decode rate is (t(N) - t(1)) / (N - 1) per step (medians of runs);
* loop: prefill once (untimed), then N steps of model(input_ids=next_token, past_key_values=cache) with a
  greedy argmax, timed between torch.cuda.synchronize() calls.

Writes JSON (rewritten after every batch). Needs only torch and transformers. Without torch (or a GPU) it
writes {"error": "torch missing: ..."} (or "needs a GPU: ...") and exits 2.

    python3 benchmarks/gpu/torch_decode.py --out torch-decode.json [--batches 1,16] [--prompt 256]
        [--new-tokens 128] [--runs 3]
"""
import argparse
import json
import os
import statistics
import sys
import time

SHAPE = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
             num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
             tie_word_embeddings=False)
EXPECTED_PARAMETERS = 1_100_048_384


def write(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def build_model(torch, transformers, seed):
    """The random fp16 eager model on cuda, initialised like transformers does (normal 0.02, norms 1)."""
    try:
        config = transformers.LlamaConfig(attn_implementation="eager", **SHAPE)
    except TypeError:  # a version whose config takes no attn_implementation keyword
        config = transformers.LlamaConfig(**SHAPE)
    try:
        config._attn_implementation = "eager"
    except AttributeError:
        pass
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)  # what from_config(dtype=float16) does: parameters born fp16
    try:
        with torch.device("cuda"):
            model = transformers.LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    if getattr(model.config, "_attn_implementation", None) != "eager" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float16}:
        model = model.to(torch.float16)
    model.eval()
    return model


def timed(torch, fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3, out


def measure(torch, model, batch, prompt, new_tokens, runs, seed):
    vocab = SHAPE["vocab_size"]
    g = torch.Generator(device="cuda").manual_seed(seed + batch)
    ids = torch.randint(3, vocab, (batch, prompt), generator=g, device="cuda")
    mask = torch.ones_like(ids)

    def generate(n):
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, pad_token_id=0)

    r = {"batch": batch}
    with torch.inference_mode():
        generate(8)  # warm-up: kernels, allocator, cuBLAS handles
        prefill = [timed(torch, lambda: generate(1))[0] for _ in range(runs)]
        gen = []
        for _ in range(runs):
            ms, out = timed(torch, lambda: generate(new_tokens))
            if out.shape[1] != prompt + new_tokens:
                raise RuntimeError(f"generate returned {out.shape[1] - prompt} new tokens, expected {new_tokens}")
            gen.append(ms)
        r["prefill_ms"] = statistics.median(prefill)
        r["prefill_ms_runs"] = prefill
        r["generate_ms"] = statistics.median(gen)
        r["generate_ms_runs"] = gen
        r["generate_decode_ms_per_step"] = (r["generate_ms"] - r["prefill_ms"]) / (new_tokens - 1)
        r["generate_decode_tokens_per_s"] = batch * 1e3 / r["generate_decode_ms_per_step"]

        loop = []
        for run in range(runs + 1):  # run 0 (16 steps) warms the loop up and is dropped
            steps = 16 if run == 0 else new_tokens
            out = model(input_ids=ids, attention_mask=mask, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)

            def decode():
                nonlocal cache, token
                for _ in range(steps):
                    o = model(input_ids=token, past_key_values=cache, use_cache=True)
                    cache = o.past_key_values
                    token = o.logits[:, -1:].argmax(-1)
                return token

            ms, _ = timed(torch, decode)
            loop.append(ms / steps)
            del cache, out
        loop = loop[1:]
        r["loop_ms_per_step"] = statistics.median(loop)
        r["loop_ms_per_step_runs"] = loop
        r["loop_tokens_per_s"] = batch * 1e3 / r["loop_ms_per_step"]
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="torch-decode.json")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    batches = [int(b) for b in a.batches.split(",")]
    if a.new_tokens < 2 or a.runs < 1 or a.prompt < 1 or min(batches) < 1:
        ap.error("need --new-tokens >= 2, --runs >= 1, --prompt >= 1 and batches >= 1")
    result = {"tool": "torch_decode", "prompt": a.prompt, "new_tokens": a.new_tokens, "runs": a.runs,
              "shape": SHAPE, "results": [], "error": None}
    try:
        import torch
        import transformers
    except ImportError as e:
        result["error"] = f"torch missing: {e}" if "torch" in str(e) and "transformers" not in str(e) \
            else f"transformers missing: {e}"
        print("torch_decode: " + result["error"])
        write(a.out, result)
        return 2
    result["torch"] = torch.__version__
    result["transformers"] = transformers.__version__
    result["python"] = sys.version.split()[0]
    if not torch.cuda.is_available():
        result["error"] = "needs a GPU: torch.cuda.is_available() is False"
        print("torch_decode: " + result["error"])
        write(a.out, result)
        return 2
    result["device"] = torch.cuda.get_device_name(0)
    result["cuda"] = torch.version.cuda
    t0 = time.perf_counter()
    model = build_model(torch, transformers, a.seed)
    torch.cuda.synchronize()
    result["build_s"] = time.perf_counter() - t0
    result["parameters"] = sum(p.numel() for p in model.parameters())
    result["dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    result["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {result['device']}: "
          f"{result['parameters']:,} parameters, {result['dtype']}, attention {result['attn_implementation']}, "
          f"built in {result['build_s']:.1f} s", flush=True)
    problems = []
    if result["parameters"] != EXPECTED_PARAMETERS:
        problems.append(f"parameters {result['parameters']:,}, expected {EXPECTED_PARAMETERS:,}")
    if result["attn_implementation"] != "eager":
        problems.append(f"attention {result['attn_implementation']}, expected eager")
    write(a.out, result)
    for batch in batches:
        try:
            r = measure(torch, model, batch, a.prompt, a.new_tokens, a.runs, a.seed)
        except Exception as e:  # report the batch, go on with the next
            problems.append(f"batch {batch}: {type(e).__name__}: {e}")
            print(f"torch_decode batch {batch} failed: {e!r}", flush=True)
            continue
        finally:
            torch.cuda.empty_cache()
        result["results"].append(r)
        print(f"batch {batch}: prefill {r['prefill_ms']:.1f} ms; generate {r['generate_decode_ms_per_step']:.3f} "
              f"ms/step = {r['generate_decode_tokens_per_s']:.1f} tok/s; loop {r['loop_ms_per_step']:.3f} ms/step = "
              f"{r['loop_tokens_per_s']:.1f} tok/s", flush=True)
        write(a.out, result)
    if problems:
        result["error"] = "; ".join(problems)
        write(a.out, result)
        print("torch_decode: " + result["error"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
