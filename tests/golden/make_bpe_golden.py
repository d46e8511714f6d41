"""Golden data for ctdl::data::bpe_tokenizer (tests/test_bpe_tokenizer.cpp), made with the
Hugging Face `tokenizers` library, offline:

    /work/venv/bin/python tests/golden/make_bpe_golden.py

writes, in tests/golden/:
  bpe_train.txt        the training text (generated here from a fixed seed: English, accents,
                       CJK, emoji, digits, whitespace runs, tabs and newlines, contractions)
  bpe_tokenizer.json   a byte-level BPE (GPT-2's kind) trained on it by tokenizers' BpeTrainer
                       (vocab 800, min_frequency 2, special token <|endoftext|>), plus added
                       tokens: "my tok" (not special), "<|café|>" (special), "<mask>" (special,
                       lstrip) and "ab c" (normalized)
  bpe_tokenizer_b.json the same model with add_prefix_space, ignore_merges and the merges
                       written in the older "a b" string form
  bpe_ctdl.json        ctdl's own trainer and writer (bpe_ctdl_writer.cpp, built here with g++):
                       train(bpe_train.txt, 600, <|endoftext|>, add_prefix_space), to_hf_json
  bpe_golden.jsonl     one JSON object a line: {"text", "ids", "ids_b", "ids_ctdl", "decoded",
                       "decoded_skip"} where ids / ids_b / ids_ctdl are tokenizers'
                       encode(text).ids under each file and
                       decoded / decoded_skip are decode(ids) with skip_special_tokens False / True; or
                       {"decode": [ids...], "text": ...}: tokenizers' decode of those ids
                       (skip_special_tokens=False), for id runs that split a UTF-8 character
Every text also checks decode(encode(text)) == text here (but for "<|café|>", whose 'é'
byte-level decoding reads as the byte 0xE9, and so as U+FFFD, and "<mask>", lstrip).
"""
import json
import os
import random
import shutil
import subprocess
import tempfile

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))


def training_text():
    rng = random.Random(12)
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "I don't think it's going to rain, but we'll see.",
        "She said: \"You're right, they've already left and I'm late.\"",
        "He'd rather read a book than watch TV; it's quieter.",
        "Numbers like 42, 3.14159, 2718 and 1000000 appear in tables.",
        "Café, naïve, résumé, façade, jalapeño and Übermensch have accents.",
        "東京は日本の首都です。今日は天気がいいですね。",
        "中文文本也需要分词，例如这个句子。",
        "Emoji are fun 😀🎉🚀 and sometimes 👍 appear twice 👍👍.",
        "Tabs\tseparate\tcolumns\tin\tthis\tline.",
        "Lines\nbreak\nhere\n\nand paragraphs too.",
        "    Indented code:\n        if (x > 0) { return y * 2; }",
        "Multiple   spaces    between     words happen.",
        "training, tokenizer, tokenization, tokens, token: subword units.",
        "We can't, we won't, we shouldn't; you'll, they'd, it's done.",
        "Dates: 2024-01-15, 1999/12/31, times 12:30 and 08:45.",
        "Prices: $19.99, €5, £3.50 and ¥1200.",
        "Straße, Ölfeld, Ärger, Größe, über alles.",
        "Ça va? Très bien, merci! À bientôt.",
    ]
    words = ("the of and to in is that it for on with as was at by be this are from or have an they "
             "which one you were her all she there would their we him been has when who will more no "
             "if out so said what up its about into than them can only other new some could time these "
             "two may then do first any my now such like our over man me even most made after also did "
             "many before must through back years where much your way well down should because each just").split()
    parts = []
    for _ in range(900):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(sentences))
        else:
            n = rng.randint(4, 14)
            parts.append(" ".join(rng.choice(words) for _ in range(n)).capitalize() + rng.choice([".", "!", "?", ","]))
        parts.append(rng.choice([" ", " ", " ", "\n", "\n\n", "  ", "\t"]))
    return "".join(parts)


TEXTS = [
    "",
    " ",
    "  ",
    "   ",
    "  leading",
    "trailing  ",
    "trailing ",
    "multiple   spaces    between words",
    "\n\n",
    "\t",
    "\r\n\r\n",
    "tabs\tand\nnewlines\r\n",
    " \t \n ",
    "a \tb",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "don't can't won't",
    "I'll we've they're I'm he'd it's",
    "IT'S DON'T I'LL WE'VE THEY'RE I'M HE'D",
    "'s's'tt''s 're've'm'll'd",
    "Café naïve résumé façade",
    "日本語のテキスト",
    "東京は日本の首都です。",
    "emoji 😀🎉 👍🏽 family 👨\u200d👩\u200d👧",
    "😀",
    "12345678901234567890",
    "3.14159 and 2,718 and ½ ² ٣ Ⅻ",
    "x<|endoftext|>y",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "text <|endoftext|> more",
    "<|endoftext",
    "<|endoftext|>hello",
    "my tok here and amy tokb",
    "z<|café|>z",
    "hello   <mask> world",
    "ab cd ab c",
    "Ελληνικά Кириллица עברית العربية",
    "\u00a0nbsp\u3000ideographic\u2028line\u0085nel",
    "mixed English日本語Русский123abc",
    "punctuation!!! ??? ... --- ''",
    "a\u0301 combining e\u0308",
    "\x00\x01 control chars \x7f",
    "    \n    indented code\n\tif (x) { return y; }",
    "supercalifragilisticexpialidocious",
    "Ωmega 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３",
    "\ue000\U0010ffff private use",
    "Straße Ölfeld Größe über",
    "We can't, we won't, we shouldn't; you'll, they'd, it's done.",
]


def byte_char(b):
    """GPT-2's byte-to-unicode map: the printable Latin-1 bytes stand for themselves, the
    others, in order, for U+0100 onwards."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in keep:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in keep].index(b))


def main():
    text = training_text()
    with open(os.path.join(HERE, "bpe_train.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=800, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer=trainer)
    tok.add_tokens([AddedToken("my tok", normalized=False)])
    tok.add_special_tokens([AddedToken("<|café|>", normalized=False)])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("ab c", normalized=True)])
    path_a = os.path.join(HERE, "bpe_tokenizer.json")
    tok.save(path_a)

    j = json.loads(tok.to_str())
    j["pre_tokenizer"]["add_prefix_space"] = True
    j["model"]["ignore_merges"] = True
    j["model"]["merges"] = [a + " " + b for a, b in j["model"]["merges"]]
    path_b = os.path.join(HERE, "bpe_tokenizer_b.json")
    with open(path_b, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)

    # ctdl's trainer and writer, read back by tokenizers.
    root = os.path.dirname(os.path.dirname(HERE))
    path_c = os.path.join(HERE, "bpe_ctdl.json")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "writer")
        subprocess.run([shutil.which("g++") or "g++", "-std=c++20", "-O1", "-I" + os.path.join(root, "include"),
                        os.path.join(HERE, "bpe_ctdl_writer.cpp"), "-o", exe], check=True)
        subprocess.run([exe, os.path.join(HERE, "bpe_train.txt"), "600", path_c], check=True)

    a = Tokenizer.from_file(path_a)
    b = Tokenizer.from_file(path_b)
    c = Tokenizer.from_file(path_c)
    assert c.get_vocab_size() == 600
    lines = []
    for t in TEXTS:
        ids = a.encode(t).ids
        ids_b = b.encode(t).ids
        decoded = a.decode(ids, skip_special_tokens=False)
        # Byte-level decoding gives the text back, but for "<|café|>" (its 'é' is read as the
        # byte 0xE9) and "<mask>" (it takes the spaces before it).
        assert decoded == t or "<|café|>" in t or "<mask>" in t, t
        assert b.decode(ids_b, skip_special_tokens=False) == decoded or not t or t[0] != " ", t
        ids_c = c.encode(t).ids
        lines.append({"text": t, "ids": ids, "ids_b": ids_b, "ids_ctdl": ids_c, "decoded": decoded,
                      "decoded_skip": a.decode(ids)})
    # Decoding id runs that cut UTF-8 characters: tokenizers replaces each ill-formed run by U+FFFD.
    emoji = a.encode("😀").ids
    cafe = a.encode("é日").ids
    runs = [emoji[:1], emoji[:-1], emoji[1:], emoji[::-1], cafe[:1] + cafe, [a.token_to_id("<|café|>")],
            a.encode("z<|café|>z").ids[::-1]]
    # Single bytes: a surrogate, past U+10FFFF, overlong forms, cut-off and stray bytes.
    for bad in [b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\x80", b"\xf0\x9f\x98",
                b"\x80\x80a", b"\xe6\x97a", b"\xff\xfe", b"\xf0\x9f\x98\x80", b"\xe6\x97\xa5\xe6"]:
        runs.append([a.token_to_id(byte_char(x)) for x in bad])
    for ids in runs:
        lines.append({"decode": ids, "text": a.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(HERE, "bpe_golden.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=True) + "\n")
    print(f"{len(TEXTS)} texts, vocab {a.get_vocab_size()}, training text {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
