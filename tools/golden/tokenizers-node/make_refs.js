// Writes tests/fixtures/tokenizers/ref_<name>.jsonl for gpt2, llama2, llama3, phi3-mini, qwen2.5 (tokenizer.json)
// and ref_synthetic_<name>.jsonl for tests/fixtures/tokenizers/synthetic/<name>.json
// from Hugging Face's own `tokenizers` node bindings (npm package "tokenizers", 0.23.x).
// Run: cd tools/golden/tokenizers-node && npm install && node make_refs.js
// Also: node make_refs.js --check-trained DIR CORPUS OUT  (encodes CORPUS — text lines, or "text" of .jsonl lines —
// with DIR/tokenizer.json; makes tests/fixtures/tokenizers/ref_trained.jsonl for the tokenizer that
// `itune train-tokenizer --input tests/fixtures/tokenizers/train_corpus.txt --vocab-size 600
//  --out tests/fixtures/tokenizers/trained` wrote, with corpus.jsonl as CORPUS).
// Each line (same order as corpus.jsonl): ids (no special tokens), offsets converted from code points to
// UTF-16 units, ids_special (add_special_tokens=true), decoded / decoded_skip (decode of ids_special).
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const root = path.resolve(__dirname, "..", "..", "..");
const shared = path.resolve(root, "..", "shared", "testdata", "tokenizers");
const fixtures = path.join(root, "tests", "fixtures", "tokenizers");

// The bindings see a JS string with lone surrogates as U+FFFD; offsets count code points of that string.
function codePointToUtf16(text) {
  const map = [0];
  let u = 0;
  for (const ch of text) { u += ch.length; map.push(u); }
  return map;
}

async function refs(tokFile, texts) {
  const tk = Tokenizer.fromFile(tokFile);
  const lines = [];
  for (const text of texts) {
    const e = await tk.encode(text, null, { addSpecialTokens: false });
    const es = await tk.encode(text, null, { addSpecialTokens: true });
    const map = codePointToUtf16(text);
    const ids = Array.from(e.getIds());
    const idsSpecial = Array.from(es.getIds());
    lines.push(JSON.stringify({
      ids,
      offsets: e.getOffsets().map(([s, t]) => [map[s], map[t]]),
      ids_special: idsSpecial,
      decoded: await tk.decode(idsSpecial, false),
      decoded_skip: await tk.decode(idsSpecial, true),
    }));
  }
  return lines.join("\n") + "\n";
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === "--check-trained") {
    const lines = fs.readFileSync(args[2], "utf8").split("\n").filter((l) => l.length > 0);
    const texts = args[2].endsWith(".jsonl") ? lines.map((l) => JSON.parse(l).text) : lines;
    fs.writeFileSync(args[3], await refs(path.join(args[1], "tokenizer.json"), texts));
    return;
  }
  const texts = fs.readFileSync(path.join(fixtures, "corpus.jsonl"), "utf8")
    .split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
  for (const name of ["gpt2", "llama2", "llama3", "phi3-mini", "qwen2.5"]) {
    const out = path.join(fixtures, `ref_${name}.jsonl`);
    fs.writeFileSync(out, await refs(path.join(shared, name, "tokenizer.json"), texts));
    console.log(name, "->", out);
  }
  // Hand-built tokenizers from tools/golden/tokenizers_synthetic.py (components the real ones do not use).
  const synth = path.join(fixtures, "synthetic");
  for (const file of fs.readdirSync(synth).filter((f) => f.endsWith(".json")).sort()) {
    const out = path.join(fixtures, `ref_synthetic_${file.replace(/\.json$/, "")}.jsonl`);
    fs.writeFileSync(out, await refs(path.join(synth, file), texts));
    console.log(file, "->", out);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
