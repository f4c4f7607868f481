// A badge under each tracked cell: its last run (status, duration, headline metric) and how many
// versions the cell has had; a click opens the cell's history.
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';
import { ICellBadge, ILatestCells, request } from './api';
import { SingleFlight, duration, value } from './format';
import { showCellHistory } from './history';

export const BADGE_CLASS = 'nbmlops-badge';

class Badge extends Widget {
  constructor() {
    super({ node: document.createElement('button') });
    this.addClass(BADGE_CLASS);
    this.node.addEventListener('click', () => {
      const runId = this.node.dataset.runId;
      if (runId) {
        showCellHistory(runId);
      }
    });
  }

  display(badge: ICellBadge): void {
    const parts = [badge.status, duration(badge.duration_s)];
    if (badge.headline) {
      parts.push(`${badge.headline.key} ${value(badge.headline.value)}`);
    }
    if (badge.versions) {
      parts.push(`v${badge.version ?? '?'} of ${badge.versions}`);
    }
    this.node.textContent = `nbmlops · ${parts.join(' · ')}`;
    this.node.title =
      `Run ${badge.run_id}${badge.name ? ` (${badge.name})` : ''}: click for this cell's ` +
      'versions and their diffs';
    this.node.dataset.runId = badge.run_id;
    this.node.dataset.status = badge.status;
  }
}

/** The badges of one notebook, refreshed from `cells/latest` after every execution. */
export class NotebookBadges {
  private badges = new Map<string, Badge>();
  private readonly refresher = new SingleFlight(() => this.load());

  constructor(private readonly panel: NotebookPanel) {}

  /** Fetch the notebook's tracked cells and put a badge on each. */
  refresh(): Promise<void> {
    return this.refresher.run();
  }

  private async load(): Promise<void> {
    let latest: ILatestCells;
    try {
      latest = await request<ILatestCells>('cells/latest', { notebook: this.panel.context.path });
    } catch {
      return; // the sidebar shows what is wrong with the server; badges just stay as they are
    }
    const seen = new Set<string>();
    for (const cell of this.panel.content.widgets) {
      const found = latest.cells[cell.model.id];
      if (found) {
        seen.add(cell.model.id);
        this.badgeOf(cell).display(found);
      }
    }
    for (const [id, badge] of this.badges) {
      if (!seen.has(id)) {
        badge.dispose();
        this.badges.delete(id);
      }
    }
  }

  private badgeOf(cell: Cell): Badge {
    let badge = this.badges.get(cell.model.id);
    if (!badge || badge.isDisposed || badge.parent !== cell) {
      badge?.dispose();
      badge = new Badge();
      const layout = cell.layout as PanelLayout;
      // Between the input and the outputs (index 2), or last in a cell without outputs.
      layout.insertWidget(Math.min(2, layout.widgets.length), badge);
      this.badges.set(cell.model.id, badge);
    }
    return badge;
  }

  dispose(): void {
    for (const badge of this.badges.values()) {
      badge.dispose();
    }
    this.badges.clear();
  }
}
