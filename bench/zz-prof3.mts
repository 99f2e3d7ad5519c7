import { readFileSync } from 'node:fs'
import { knownNames } from '../src/app.js'
import { compilePolicy } from '../src/policy/compile.js'
import { readQuality } from '../src/quality/read.js'
import { createSqliteStore } from '../src/store/sqlite/database.js'
import { loadWorkspace } from '../src/workspace/workspace.js'
const workspace = await loadWorkspace('examples/shop')
const known = knownNames(workspace)
const policy = compilePolicy(readFileSync(workspace.policyFile, 'utf8'), 'policy.yaml', known)
const store = createSqliteStore(process.argv[2]!, { sync: 'full' })
const now = new Date()
const deps = { store, queues: workspace.queues, policy: () => policy, known, now: () => now, keepFolds: true }
const t = performance.now()
const c = process.cpuUsage()
await readQuality(deps, { since: '29d' })
const u = process.cpuUsage(c)
console.log('quality', (performance.now() - t).toFixed(0), 'ms wall', ((u.user + u.system) / 1000).toFixed(0), 'ms cpu')
await store.close()
