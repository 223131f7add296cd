// /metrics of a multi-worker node: each worker's exposition, family by family, every sample with
// a `worker` label (the cluster worker id), as multi-process exporters do. A family's samples
// must stay together in the text format, so the texts are merged, not concatenated; sum across
// workers in queries (`sum without (worker) (...)`).

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

interface Family { meta: string[]; samples: string[] }

export function mergeMetrics(texts: { worker: number; text: string }[]): string {
  const families = new Map<string, Family>();
  for (const { worker, text } of texts) {
    let current: Family | null = null;
    for (const line of text.split('\n')) {
      if (!line) continue;
      const meta = /^# (?:HELP|TYPE) (\S+)/.exec(line);
      const name = meta ? meta[1] : NAME.exec(line)?.[0];
      if (!name) continue;
      if (meta || !current) {
        let f = families.get(name);
        if (!f) families.set(name, f = { meta: [], samples: [] });
        if (meta && !f.meta.includes(line)) f.meta.push(line);
        current = f;
        if (meta) continue;
      }
      const rest = line.slice(name.length);
      current.samples.push(rest.startsWith('{') ? `${name}{worker="${worker}",${rest.slice(1)}` : `${name}{worker="${worker}"}${rest}`);
    }
  }
  let out = '';
  for (const f of families.values()) out += f.meta.map((l) => l + '\n').join('') + f.samples.map((l) => l + '\n').join('');
  return out;
}
