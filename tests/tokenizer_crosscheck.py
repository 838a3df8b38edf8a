#!/usr/bin/env python3
"""Cross-check of lowbit's tokenizers against Hugging Face `tokenizers` on real text: for the
installed models, every line of a sample of the corpora (Austen, Moby Dick) plus hard cases
(digits, accents, emoji, CJK, odd spacing, chat markers) must encode to the same ids.

  * SmolLM2 (GGUF): the reference tokenizer is built from the GGUF's own vocabulary and merges
    with the pre-tokenizer SmolLM2's tokenizer.json declares: Sequence[Digits(individual),
    ByteLevel(add_prefix_space=false)]; its control tokens are added as special tokens.
  * all-MiniLM-L6-v2: its own tokenizer.json (truncation and padding switched off).

Usage: tokenizer_crosscheck.py LOWBIT [MODELS_DIR] [CORPORA_DIR]
Exits 77 (ctest: skipped) with the reason when tokenizers / gguf / the models / the corpora are
missing.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOWBIT = sys.argv[1]
MODELS = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("LOWBIT_MODELS", os.path.join(HERE, "..", "models"))
CORPORA = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "..", "shared", "corpora")
SMOL = os.path.join(MODELS, "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM = os.path.join(MODELS, "all-minilm-l6-v2")


def skip(reason):
    print(f"SKIPPED: {reason}")
    sys.exit(77)


try:
    import tokenizers
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken
except ImportError as e:
    skip(f"needs the tokenizers package ({e}); pip install tokenizers")
if not os.path.exists(SMOL) or not os.path.exists(MINILM):
    skip(f"models not installed under {MODELS}; run scripts/install-models.sh")
if not os.path.isdir(CORPORA):
    skip(f"no corpora at {CORPORA} (../shared/corpora beside the checkout)")

HARD_CASES = [
    "", " ", "  leading and trailing  ", "tabs\tand\ttabs", "numbers 1234567 3.14159 1,000,000 42nd",
    "naïve café résumé Zoë façade", "emoji 😀👍🏽 and symbols © ® ™ € £ ¥", "中文字符 and 日本語のテキスト",
    "I'm, you're, it's, we've, they'll, she'd", "UPPER CASE WORDS", "hyphen-ated and em—dash and ellipsis…",
    "<|im_start|>user\nHello<|im_end|>", "url https://example.com/a?b=c&d=e", "multiple\n\n\nnewlines",
    "mixed\u00a0non-breaking\u2009thin\u3000ideographic spaces", "accents Ä Ö Ü ß É È Ê",
    "ﬁ ligature and ½ fraction and ① circled", "\u0301combining first", "Straße",
]


def sample_lines(limit_per_file):
    lines = []
    for name in ["austen_prideprejudice.txt", "austen_emma.txt", "austen_persuasion.txt", "mobydick.txt"]:
        with open(os.path.join(CORPORA, name), encoding="utf-8", newline="") as f:
            file_lines = f.read().split("\n")
        lines += [l for l in file_lines if l.strip()][:limit_per_file]
    return lines


def smollm_reference():
    try:
        from gguf import GGUFReader
    except ImportError as e:
        skip(f"needs the gguf package to read the SmolLM2 vocabulary ({e}); pip install gguf")
    r = GGUFReader(SMOL)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t == 3])
    return tok


def minilm_reference():
    tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def compare(name, model_arg, reference, lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lines.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write("".join(json.dumps(l) + "\n" for l in lines))
        out = subprocess.run([LOWBIT, "tokenize", "--model", model_arg, "--jsonl", "--lines", path], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    if len(out) != len(lines):
        print(f"{name}: lowbit printed {len(out)} lines for {len(lines)} inputs")
        return 1
    bad = 0
    n_tokens = 0
    for line, got in zip(lines, out):
        want = reference.encode(line).ids
        got = json.loads(got)
        n_tokens += len(want)
        if got != want:
            bad += 1
            if bad <= 5:
                print(f"{name} MISMATCH on {line!r}\n  lowbit: {got}\n  HF:     {want}")
    print(f"{name}: {len(lines) - bad}/{len(lines)} lines identical ({n_tokens} reference tokens)")
    return bad


def main():
    lines = sample_lines(1000) + HARD_CASES
    failures = compare("SmolLM2 (byte-level BPE)", SMOL, smollm_reference(), lines)
    failures += compare("all-MiniLM-L6-v2 (WordPiece)", MINILM, minilm_reference(), lines)
    if failures:
        print(f"{failures} line(s) tokenize differently from Hugging Face tokenizers {tokenizers.__version__}")
        sys.exit(1)
    print(f"all lines match Hugging Face tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
