// Fails when the TypeScript modules under the given folders import each other in a circle (type-only imports and
// re-exports count: a circle of types is still a circle to read). Usage: node scripts/check-cycles.mjs src/store
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const roots = process.argv.slice(2).map((r) => resolve(r))
if (roots.length === 0) {
  console.error('usage: node scripts/check-cycles.mjs <folder>…')
  process.exit(2)
}

const files = []
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p)
  }
}
for (const r of roots) walk(r)
const known = new Set(files)

/** The files under the roots that `file` imports or re-exports (relative specifiers, `.js` written for `.ts`). */
const edges = new Map()
for (const file of files) {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  const out = []
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) continue
    const target = resolve(dirname(file), fileName.replace(/\.js$/, '.ts'))
    if (known.has(target)) out.push(target)
  }
  edges.set(file, out)
}

// Tarjan's strongly connected components: every component of more than one file (or a file importing itself) is a
// circle.
let index = 0
const stack = []
const state = new Map()
const circles = []
const visit = (v) => {
  const s = { index, low: index, onStack: true }
  index += 1
  state.set(v, s)
  stack.push(v)
  for (const w of edges.get(v)) {
    const t = state.get(w)
    if (t === undefined) {
      visit(w)
      s.low = Math.min(s.low, state.get(w).low)
    } else if (t.onStack) s.low = Math.min(s.low, t.index)
  }
  if (s.low === s.index) {
    const component = []
    let w
    do {
      w = stack.pop()
      state.get(w).onStack = false
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || edges.get(v).includes(v)) circles.push(component)
  }
}
for (const f of files) if (!state.has(f)) visit(f)

const shown = (f) => relative(process.cwd(), f)
if (circles.length > 0) {
  for (const c of circles) console.error(`import circle: ${c.map(shown).sort().join(', ')}`)
  process.exit(1)
}
console.log(`no import circle among ${files.length} files under ${roots.map(shown).join(', ')}`)
