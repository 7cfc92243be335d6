// Renders chat templates with @huggingface/jinja (the reference implementation transformers.js uses) so our Java
// interpreter can be compared with it. argv[2]: a JSON file holding [{template, vars, now?}]; prints a JSON array of
// {ok: output} or {error: message}, one per case. "now" (epoch ms) pins the clock strftime_now reads (in UTC).
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';

process.env.TZ = 'UTC';
const RealDate = Date;
const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = [];
for (const c of cases) {
  if (c.now !== undefined && c.now !== null) {
    const fixed = c.now;
    globalThis.Date = class extends RealDate {
      constructor(...args) {
        if (args.length === 0) super(fixed); else super(...args);
      }
      static now() { return fixed; }
    };
  } else {
    globalThis.Date = RealDate;
  }
  try {
    out.push({ ok: new Template(c.template).render(c.vars) });
  } catch (e) {
    out.push({ error: String(e && e.message !== undefined ? e.message : e) });
  }
}
globalThis.Date = RealDate;
console.log(JSON.stringify(out));
