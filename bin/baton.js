#!/usr/bin/env node
// The package's CLI. `npm ci` builds dist/ (the `prepare` script); run `npm run build` after changing src/.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('baton: dist/ is missing; run `npm run build` (npm ci does it for you)\n')
  process.exit(1)
}
await import(entry.href)
