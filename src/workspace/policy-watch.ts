import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs'
import { basename, dirname } from 'node:path'

export interface FileWatch {
  close(): void
}

/**
 * Calls `onChange` once things settle after the file at `path` may have changed, however it was saved: written in
 * place, replaced by a rename (`mv tmp policy.yaml`, `sed -i`, most editors, Ansible), or swapped under a symlink
 * (a Kubernetes ConfigMap volume renames its `..data` link). Watching the file itself follows its first inode only,
 * so one rename ended every later reload; this watches the directory, whose entries survive any replacement, and
 * polls the path's `stat` as a backstop for filesystems without change events (some network and container mounts).
 * Events come in bursts (truncate, write, rename): `onChange` runs `debounceMs` after the last one, or 10 periods
 * after the first when they never pause. Events of other files in the directory are ignored. `onChange` may run
 * when nothing changed; the caller compares content.
 */
export function watchFileByPath(
  path: string,
  onChange: () => void,
  options: {
    readonly debounceMs?: number
    readonly pollMs?: number
    readonly onError?: (e: unknown) => void
  } = {},
): FileWatch {
  const debounceMs = options.debounceMs ?? 100
  const name = basename(path)
  let timer: NodeJS.Timeout | undefined
  let burstStart = 0
  let closed = false
  const fire = () => {
    timer = undefined
    onChange()
  }
  const changed = () => {
    if (closed) return
    const now = Date.now()
    if (timer === undefined) burstStart = now
    clearTimeout(timer)
    // A file rewritten without pause still reloads, 10 debounce periods after its burst began.
    timer = setTimeout(fire, Math.max(0, Math.min(debounceMs, burstStart + 10 * debounceMs - now)))
  }

  let dirWatch: FSWatcher | undefined
  let rearm: NodeJS.Timeout | undefined
  const arm = () => {
    if (closed) return
    try {
      // The file's own name (written, or renamed onto), and a ConfigMap's `..data` swap, which never names it.
      dirWatch = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file === null || file === name || file.startsWith('..')) changed()
      })
      dirWatch.on('error', (e) => {
        options.onError?.(e)
        dirWatch?.close()
        dirWatch = undefined
        rearm = setTimeout(arm, 1000)
      })
    } catch (e) {
      options.onError?.(e)
      rearm = setTimeout(arm, 1000)
    }
  }
  arm()

  const poll = (curr: { mtimeMs: number; ino: number; size: number }, prev: typeof curr) => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.ino !== prev.ino || curr.size !== prev.size) changed()
  }
  watchFile(path, { interval: options.pollMs ?? 2000, persistent: false }, poll)

  return {
    close() {
      closed = true
      clearTimeout(timer)
      clearTimeout(rearm)
      dirWatch?.close()
      unwatchFile(path, poll)
    },
  }
}
