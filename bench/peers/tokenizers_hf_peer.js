// Peer for `InstructTune.Bench tokenizers`: Hugging Face tokenizers (npm "tokenizers", native Rust) encode speed.
// Usage: RAYON_NUM_THREADS=1 node bench/peers/tokenizers_hf_peer.js CORPUS.txt tokenizer.json
// Needs `npm install` in tools/golden/tokenizers-node. Encodes the lines with encodeBatch in blocks of 1000 (so the
// per-call cost of the async JS binding is not what is measured; RAYON_NUM_THREADS=1 keeps it single-threaded),
// without special tokens, and prints one JSON line: {"peer": "hf-tokenizers", "mb_per_s": … (wall),
// "mb_per_cpu_s": … (process CPU time, all threads), "tokens": …}.
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require(path.resolve(__dirname, "..", "..", "tools", "golden", "tokenizers-node", "node_modules", "tokenizers"));
const version = require(path.resolve(__dirname, "..", "..", "tools", "golden", "tokenizers-node", "node_modules", "tokenizers", "package.json")).version;

async function main() {
  const [corpus, tokFile] = process.argv.slice(2);
  const lines = fs.readFileSync(corpus, "utf8").split("\n");
  const mb = Buffer.byteLength(lines.join(""), "utf8") / 1e6;
  const tk = Tokenizer.fromFile(tokFile);
  await tk.encodeBatch(lines.slice(0, 1000), { addSpecialTokens: false }); // warm up
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  let tokens = 0;
  for (let i = 0; i < lines.length; i += 1000) {
    const encs = await tk.encodeBatch(lines.slice(i, i + 1000), { addSpecialTokens: false });
    for (const e of encs) tokens += e.getIds().length;
  }
  const dt = Number(process.hrtime.bigint() - t) / 1e9;
  const cu = process.cpuUsage(c);
  const dc = (cu.user + cu.system) / 1e6; // all threads of the process
  console.log(JSON.stringify({ peer: "hf-tokenizers", version, mb_per_s: mb / dt, mb_per_cpu_s: mb / dc, tokens, seconds: dt, cpu_seconds: dc }));
}
main().catch((e) => { console.error(e); process.exit(1); });
