// Parses a GGUF file with @huggingface/gguf (an independent parser) and prints what our Java reader must agree on.
import { gguf } from '@huggingface/gguf';

const file = process.argv[2];
const { typedMetadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true, typedMetadata: true });
const meta = {};
for (const [k, v] of Object.entries(typedMetadata)) {
  if (Array.isArray(v.value)) {
    meta[k] = { type: v.type, subType: v.subType, length: v.value.length, values: v.value.map(x => typeof x === 'bigint' ? Number(x) : x) };
  } else {
    meta[k] = { type: v.type, value: typeof v.value === 'bigint' ? Number(v.value) : v.value };
  }
}
const tensors = tensorInfos.map(t => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype, offset: Number(t.offset) }));
console.log(JSON.stringify({ meta, tensors, tensorDataOffset: tensorDataOffset === undefined ? -1 : Number(tensorDataOffset) }));
