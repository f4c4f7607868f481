// Small formatting helpers shared by the sidebar, the badges and the history dialog.

/** An element with a class and text, the building block of these views (no innerHTML: every
 * value shown comes from the store and is untrusted). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '–';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

export function value(v: unknown): string {
  if (v === null || v === undefined) {
    return '–';
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      return String(v);
    }
    return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3
      ? v.toExponential(3)
      : String(Number(v.toPrecision(4)));
  }
  if (typeof v === 'object') {
    return JSON.stringify(v);
  }
  return String(v);
}

export function when(iso: string | null | undefined): string {
  if (!iso) {
    return '–';
  }
  const date = new Date(iso);
  return isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A unified diff as coloured lines. */
export function diffView(lines: string[]): HTMLElement {
  const pre = el('pre', 'nbmlops-diff');
  if (lines.length === 0) {
    pre.textContent = 'The sources are the same.';
    return pre;
  }
  for (const line of lines) {
    let kind = '';
    if (line.startsWith('+++') || line.startsWith('---')) {
      kind = 'nbmlops-diff-file';
    } else if (line.startsWith('@@')) {
      kind = 'nbmlops-diff-hunk';
    } else if (line.startsWith('+')) {
      kind = 'nbmlops-diff-add';
    } else if (line.startsWith('-')) {
      kind = 'nbmlops-diff-del';
    }
    pre.appendChild(el('span', kind, line + '\n'));
  }
  return pre;
}

export function table(headers: string[], rows: Array<Array<string | HTMLElement>>): HTMLElement {
  const t = el('table', 'nbmlops-table');
  const head = t.createTHead().insertRow();
  for (const h of headers) {
    head.appendChild(el('th', '', h));
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      const td = tr.insertCell();
      if (typeof cell === 'string') {
        td.textContent = cell;
      } else {
        td.appendChild(cell);
      }
    }
  }
  return t;
}

/** Runs `load` with at most one call in flight: a call made meanwhile runs once more after it,
 * so the last request for fresh data is always honoured without piling up requests. */
export class SingleFlight {
  private pending: Promise<void> | null = null;
  private again = false;

  constructor(private readonly load: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.pending = this.load().finally(() => {
      this.pending = null;
      if (this.again) {
        this.again = false;
        void this.run();
      }
    });
    return this.pending;
  }
}
