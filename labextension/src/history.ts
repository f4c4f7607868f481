// A cell's versions with their runs, and the diff between any two: opened from a cell's badge.
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import { ICellHistory, IDiff, request } from './api';
import { diffView, el, when } from './format';

export class CellHistoryView extends Widget {
  constructor(private readonly runOrCell: string) {
    super();
    this.addClass('nbmlops-history');
    this.node.appendChild(el('div', 'nbmlops-muted', 'Loading the cell history…'));
    void this.load();
  }

  private async load(): Promise<void> {
    let history: ICellHistory;
    try {
      history = await request<ICellHistory>(
        `cells/${encodeURIComponent(this.runOrCell)}/history`
      );
    } catch (error) {
      this.node.replaceChildren(el('div', 'nbmlops-error', String((error as Error).message)));
      return;
    }
    const versions = history.versions;
    const list = el('div', 'nbmlops-versions');
    const diff = el('div', 'nbmlops-history-diff');
    const selected: string[] = [];
    const rows: HTMLElement[] = [];
    const showDiff = async () => {
      if (selected.length !== 2) {
        diff.replaceChildren(el('div', 'nbmlops-muted', 'Tick two versions to see their diff.'));
        return;
      }
      try {
        const [a, b] = [...selected].sort(
          (x, y) => versions.findIndex(v => v.source_hash === x) -
            versions.findIndex(v => v.source_hash === y)
        );
        const result = await request<IDiff>('cells/diff', { a, b });
        diff.replaceChildren(diffView(result.lines));
      } catch (error) {
        diff.replaceChildren(el('div', 'nbmlops-error', String((error as Error).message)));
      }
    };
    for (const version of [...versions].reverse()) {
      const row = el('label', 'nbmlops-version');
      const box = el('input');
      box.type = 'checkbox';
      box.dataset.hash = version.source_hash;
      box.addEventListener('change', () => {
        if (box.checked) {
          selected.push(version.source_hash);
          while (selected.length > 2) {
            const dropped = selected.shift();
            const other = rows.find(r => r.dataset.hash === dropped);
            const input = other?.querySelector('input');
            if (input) {
              input.checked = false;
            }
          }
        } else {
          selected.splice(selected.indexOf(version.source_hash), 1);
        }
        void showDiff();
      });
      row.dataset.hash = version.source_hash;
      row.appendChild(box);
      const runs = version.runs.length;
      row.appendChild(
        el(
          'span',
          '',
          `v${version.version} · ${version.executions} execution${version.executions === 1 ? '' : 's'}` +
            ` · ${runs} tracked run${runs === 1 ? '' : 's'} · last ${when(version.last_run)}`
        )
      );
      const source = el('pre', 'nbmlops-source', version.source);
      const item = el('div', 'nbmlops-version-item');
      item.append(row, source);
      rows.push(row);
      list.appendChild(item);
    }
    const title = el(
      'div',
      'nbmlops-muted',
      `${versions.length} version${versions.length === 1 ? '' : 's'} of cell ${history.cell_id}`
    );
    this.node.replaceChildren(title, list, diff);
    // The two newest versions are ticked, so their diff shows at once.
    for (const row of rows.slice(0, 2)) {
      const input = row.querySelector('input');
      if (input) {
        input.checked = true;
        selected.push(row.dataset.hash!);
      }
    }
    void showDiff();
  }
}

export function showCellHistory(runOrCell: string): void {
  void showDialog({
    title: 'nbmlops: cell history',
    body: new CellHistoryView(runOrCell),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
