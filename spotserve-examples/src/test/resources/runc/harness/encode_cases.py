# Writes the texts for tok512-encode-runc.tsv (cases.hex) and tok512-encode-bytes-runc.tsv (cases_bytes.hex):
# one hex-encoded UTF-8 string per line. Fixed texts, 150 seeded-random ones, then tie-break cases.
import random, sys
rnd = random.Random(20261123)
fixed = ["", " ", "  ", "\n", "Once upon a time", "Lily and Ben", "Lily saw a café ☕", "Hello, world!",
 "naïve façade", "日本語のテキスト", "™", "👍🏽 thumbs", "a\u200ab", "  leading spaces", "trailing spaces  ",
 "tabs\tand\nnewlines\r\n", "The quick brown fox jumps over the lazy dog.", "<0x41>", "<s>", "\n<s>\n",
 "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.",
 "Lily's mom said, \"Lily, let's go to the park.\"", "ÀÉÎÕÜ àéîõü ß ø å", "Ωμέγα", "Привет, мир", "emoji 😀😃😄 end",
 "\x7f\x01\x02 control", "~[]{}|\\^`", "0123456789", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "the the the the", " t t t"]
words = open(sys.argv[1]).read().split()  # words of the greedy-empty-256.stdout reference
alpha = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'\"-\n\t") + \
    ["é", "ü", "ñ", "ç", "Ω", "ж", "中", "文", "™", "☕", "😀", "🏽", "\u200a", "€", "£", "ß"]
cases = list(fixed)
for i in range(150):
    if rnd.random() < 0.5:
        s = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12)))
        if rnd.random() < 0.5:
            k = rnd.randint(0, len(s)); s = s[:k] + rnd.choice(alpha) + s[k:]
    else:
        s = "".join(rnd.choice(alpha) for _ in range(rnd.randint(1, 25)))
    cases.append(s)
cases += ["-lll", "ppp", "ooooo", "lllll pppp"]  # overlapping equal-score pairs: leftmost merges first
with open("cases.hex", "w") as f:
    for s in cases: f.write(s.encode("utf-8").hex() + "\n")
bad = [b"\x80", b"abc\x80\x80def", b"\xc3", b"caf\xc3", b"\xe2\x98", b"\xf0\x9f\x98\x80\x80\x80\x80 x", b"\xff\xfe",
       b"\xc3\xa9\xa9", b"a\xf8\x88\x80\x80\x80b", b"\xed\xa0\x80"]
with open("cases_bytes.hex", "w") as f:
    for b in bad: f.write(b.hex() + "\n")
