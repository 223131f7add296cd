// Kong-style pagination (`offset` tokens from each page's answer): a stack of the offsets walked,
// so "back" needs no server support.
import { useState } from 'preact/hooks';

export function useOffsets() {
  const [offsets, setOffsets] = useState<string[]>([]);
  return {
    offset: offsets[offsets.length - 1] as string | undefined,
    hasPrevious: offsets.length > 0,
    previous: () => setOffsets(offsets.slice(0, -1)),
    next: (offset: string) => setOffsets([...offsets, offset]),
    reset: () => setOffsets([]),
  };
}

export function Pager({ pages, nextOffset, labels = ['Previous', 'Next'] }: { pages: ReturnType<typeof useOffsets>; nextOffset?: string; labels?: [string, string] }) {
  return (
    <nav aria-label="Pages" class="pager">
      <button class="secondary" disabled={!pages.hasPrevious} onClick={pages.previous}>{labels[0]}</button>
      <button class="secondary" disabled={!nextOffset} onClick={() => nextOffset && pages.next(nextOffset)}>{labels[1]}</button>
    </nav>
  );
}
