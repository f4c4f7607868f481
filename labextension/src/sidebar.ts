// The runs sidebar: the current notebook's runs (or all), details on click, two or more compared;
// below them the registered models, each reviewed or approved version with a link to its review.
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import {
  ICompare,
  IModelReviews,
  IModels,
  IRunDetail,
  IRunRow,
  IRunsPage,
  NbmlopsError,
  request,
  serverVersion
} from './api';
import { SingleFlight, diffView, duration, el, table, value, when } from './format';

export const nbmlopsIcon = new LabIcon({
  name: 'nbmlops:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="13" width="4" height="8" rx="1"/><rect x="10" y="8" width="4" height="13" rx="1"/>' +
    '<rect x="17" y="3" width="4" height="18" rx="1"/></g></svg>'
});

const PAGE = 200;

/** Opens a file (a path relative to the server root) in JupyterLab. */
export type Opener = (path: string) => void;

export class RunsSidebar extends Widget {
  private allRuns = false;
  private filter = '';
  private selected = new Set<string>();
  private rows: IRunRow[] = [];
  private readonly status = el('div', 'nbmlops-status');
  private readonly list = el('div', 'nbmlops-run-list');
  private readonly detail = el('div', 'nbmlops-detail');
  private readonly models = el('div', 'nbmlops-models');
  private readonly compareButton = el('button', 'jp-mod-styled nbmlops-compare', 'Compare selected');
  private readonly refresher = new SingleFlight(() => this.load());

  /** ``open``: how a review notebook is opened (docmanager:open); without it, a link to it. */
  constructor(
    private readonly notebooks: INotebookTracker,
    private readonly open: Opener | null = null
  ) {
    super();
    this.id = 'nbmlops-runs';
    this.addClass('nbmlops-sidebar');
    this.title.icon = nbmlopsIcon;
    this.title.caption = 'nbmlops runs';

    const scope = el('label', 'nbmlops-scope');
    const all = el('input');
    all.type = 'checkbox';
    all.className = 'nbmlops-all-runs';
    all.addEventListener('change', () => {
      this.allRuns = all.checked;
      void this.refresh();
    });
    scope.append(all, document.createTextNode(' all runs'));
    const filter = el('input', 'nbmlops-filter');
    filter.placeholder = "filter, e.g. metrics.mae < 50 AND status = 'finished'";
    filter.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.filter = filter.value;
        void this.refresh();
      }
    });
    const reload = el('button', 'jp-mod-styled nbmlops-refresh', 'Refresh');
    reload.addEventListener('click', () => void this.refresh());
    this.compareButton.disabled = true;
    this.compareButton.addEventListener('click', () => void this.compare());
    const toolbar = el('div', 'nbmlops-toolbar');
    toolbar.append(el('span', 'nbmlops-title', 'nbmlops runs'), scope, reload);
    const actions = el('div', 'nbmlops-actions');
    actions.append(this.compareButton);
    this.node.append(toolbar, filter, this.status, this.list, actions, this.models, this.detail);
    notebooks.currentChanged.connect(() => void this.refresh(), this);
  }

  protected onAfterShow(_message: Message): void {
    void this.refresh();
  }

  /** Which notebook the list is for (null: all runs, or no notebook open). */
  private get notebookPath(): string | null {
    if (this.allRuns) {
      return null;
    }
    return this.notebooks.currentWidget?.context.path ?? null;
  }

  /** Reload the list; at most one request at a time, the latest wish wins. */
  refresh(): Promise<void> {
    return this.refresher.run();
  }

  private async load(): Promise<void> {
    if (!this.isVisible && this.rows.length > 0) {
      return;
    }
    const notebook = this.notebookPath;
    if (!this.allRuns && notebook === null) {
      this.display([], 'Open a notebook to see its runs, or tick "all runs".');
      await this.loadModels();
      return;
    }
    try {
      await serverVersion();
      const page = await request<IRunsPage>('runs', {
        notebook: notebook ?? undefined,
        // All runs: of the store the current notebook's kernel writes to (the nearest
        // .nbmlops/ above it), not necessarily the one at the server's root.
        path: this.notebooks.currentWidget?.context.path,
        filter: this.filter || undefined,
        limit: PAGE
      });
      const scope = notebook ? `in ${notebook}` : 'in the store';
      const shown = page.runs.length < page.total ? `newest ${page.runs.length} of ` : '';
      this.display(page.runs, `${shown}${page.total} run${page.total === 1 ? '' : 's'} ${scope}`);
    } catch (error) {
      this.display([], (error as NbmlopsError).message, true);
      return;
    }
    await this.loadModels();
  }

  /** The models of the store, each reviewed or approved version with its latest review. */
  private async loadModels(): Promise<void> {
    const path = this.notebooks.currentWidget?.context.path;
    try {
      await serverVersion(); // without the server extension: its message, not a bare 404
      const [models, reviews] = await Promise.all([
        request<IModels>('models', { path }),
        request<IModelReviews>('reviews/models', { path })
      ]);
      if (!models.models.length) {
        this.models.replaceChildren();
        return;
      }
      const parts: HTMLElement[] = [el('span', 'nbmlops-title', 'Models')];
      for (const model of models.models) {
        const latest = model.latest_version === null ? '' : ` · latest v${model.latest_version}`;
        const head = el('div', 'nbmlops-model');
        head.dataset.model = model.name;
        head.append(el('span', 'nbmlops-run-name', model.name), el('span', 'nbmlops-muted', latest));
        parts.push(head);
        const versions = reviews.versions.filter(v => v.name === model.name).reverse();
        if (!versions.length) {
          parts.push(el('div', 'nbmlops-run-meta', 'no review yet: nbmlops review model NAME/VERSION'));
        }
        for (const v of versions) {
          parts.push(this.versionView(v));
        }
      }
      this.models.replaceChildren(...parts);
    } catch (error) {
      this.models.replaceChildren(el('div', 'nbmlops-error', (error as Error).message));
    }
  }

  /** "v2 reviewed <when> · N approvals", and a link that opens the review notebook. */
  private versionView(v: IModelReviews['versions'][number]): HTMLElement {
    const n = v.approvals.length;
    const approvals = `${n} approval${n === 1 ? '' : 's'}`;
    const review = v.review;
    const line = el('div', 'nbmlops-run-meta nbmlops-model-review');
    line.dataset.ref = `${v.name}/${v.version}`;
    const said = review ? `reviewed ${when(review.created_at)}` : 'not reviewed';
    line.append(document.createTextNode(`v${v.version} ${said} · ${approvals}`));
    line.title = [
      review ? `review ${review.review_id} against ${review.against ?? 'nothing'}` : '',
      review?.headline ?? '',
      ...v.approvals.map(
        a => `approved by ${a.by} ${when(a.at)}${a.comment ? `: ${a.comment}` : ''}`
      )
    ]
      .filter(Boolean)
      .join('\n');
    if (review?.notebook_path) {
      const path = review.notebook_path;
      const link = el('a', 'nbmlops-review-link', 'open review');
      link.href = URLExt.join(PageConfig.getBaseUrl(), 'lab/tree', URLExt.encodeParts(path));
      link.addEventListener('click', event => {
        if (this.open) {
          event.preventDefault();
          this.open(path);
        }
      });
      line.append(document.createTextNode(' · '), link);
    } else if (review?.folder) {
      line.append(el('div', 'nbmlops-muted', `review: ${review.folder} (outside the server root)`));
    }
    return line;
  }

  private display(rows: IRunRow[], message: string, isError = false): void {
    this.rows = rows;
    this.status.textContent = message;
    this.status.classList.toggle('nbmlops-error', isError);
    const known = new Set(rows.map(r => r.run_id));
    for (const id of [...this.selected]) {
      if (!known.has(id)) {
        this.selected.delete(id);
      }
    }
    this.list.replaceChildren(...rows.map(row => this.rowView(row)));
    this.updateCompareButton();
  }

  private rowView(row: IRunRow): HTMLElement {
    const item = el('div', 'nbmlops-run');
    item.dataset.runId = row.run_id;
    item.dataset.status = row.status;
    const box = el('input', 'nbmlops-select');
    box.type = 'checkbox';
    box.checked = this.selected.has(row.run_id);
    box.addEventListener('click', event => event.stopPropagation());
    box.addEventListener('change', () => {
      if (box.checked) {
        this.selected.add(row.run_id);
      } else {
        this.selected.delete(row.run_id);
      }
      this.updateCompareButton();
    });
    const name = el('span', 'nbmlops-run-name', row.name ?? row.run_id);
    const status = el('span', `nbmlops-run-status nbmlops-${row.status}`, row.status);
    const meta = el('span', 'nbmlops-run-meta', `${when(row.start_time)} · ${duration(row.duration_s)}`);
    const metrics = Object.entries(row)
      .filter(([key, v]) => key.startsWith('metrics.') && v !== null)
      .slice(0, 3)
      .map(([key, v]) => `${key.slice('metrics.'.length)} ${value(v)}`)
      .join(' · ');
    const first = el('div', 'nbmlops-run-line');
    first.append(box, status, name);
    item.append(first, meta, el('span', 'nbmlops-run-metrics', metrics));
    item.addEventListener('click', () => void this.details(row.run_id));
    return item;
  }

  private updateCompareButton(): void {
    const n = this.selected.size;
    this.compareButton.disabled = n < 2;
    this.compareButton.textContent = n < 2 ? 'Tick two runs to compare' : `Compare ${n} runs`;
  }

  private async details(runId: string): Promise<void> {
    for (const node of this.list.querySelectorAll('.nbmlops-run')) {
      node.classList.toggle('nbmlops-current', (node as HTMLElement).dataset.runId === runId);
    }
    this.detail.replaceChildren(el('div', 'nbmlops-muted', 'Loading…'));
    try {
      const run = await request<IRunDetail>(`runs/${encodeURIComponent(runId)}`);
      const info = run.info;
      const heading = el('h3', '', `${info.name ?? run.run_id} · ${info.status}`);
      const facts = el(
        'div',
        'nbmlops-muted',
        `run ${run.run_id} · ${info.experiment ?? ''} · ${when(info.start_time)} · ` +
          duration(info.duration_s)
      );
      const parts: HTMLElement[] = [heading, facts];
      if (info.error_type) {
        parts.push(el('div', 'nbmlops-error', `${info.error_type}: ${info.error_message ?? ''}`));
      }
      const section = (title: string, body: HTMLElement) => {
        parts.push(el('h4', '', title), body);
      };
      section(
        'Params',
        table(['param', 'value'], Object.entries(run.params).map(([k, v]) => [k, value(v)]))
      );
      section(
        'Metrics',
        table(['metric', 'value'], Object.entries(run.metrics).map(([k, v]) => [k, value(v)]))
      );
      section(
        'Datasets',
        table(
          ['role', 'name', 'fingerprint', 'shape'],
          run.datasets.map(d => [
            d.role,
            d.name,
            String(d.dataset_id ?? '').slice(0, 12),
            d.n_rows === null || d.n_rows === undefined ? '' : `${d.n_rows}×${d.n_columns ?? '?'}`
          ])
        )
      );
      if (run.dataset_versions.length) {
        const used = el('ul', 'nbmlops-dataset-versions');
        for (const d of run.dataset_versions) {
          const how = d.variable ? `${d.how} as ${d.variable}` : d.how;
          const item = el('li', 'nbmlops-dataset-version', `${d.ref} (${how})`);
          item.dataset.ref = d.ref;
          item.title = `nbm.load_dataset("${d.ref}") reads it back`;
          used.append(item);
        }
        section('Dataset versions', used);
      }
      section(
        'Artifacts',
        table(['kind', 'name', 'size'], run.artifacts.map(a => [a.kind, a.name, `${a.size} B`]))
      );
      section('Cell source', el('pre', 'nbmlops-source', run.cell_source ?? '(none)'));
      this.detail.replaceChildren(...parts);
    } catch (error) {
      this.detail.replaceChildren(el('div', 'nbmlops-error', (error as Error).message));
    }
  }

  private async compare(): Promise<void> {
    // Oldest first, so the source diff reads from the earlier run to the later one.
    const ids = this.rows
      .map(r => r.run_id)
      .filter(id => this.selected.has(id))
      .reverse();
    this.detail.replaceChildren(el('div', 'nbmlops-muted', 'Comparing…'));
    try {
      const result = await request<ICompare>('compare', { runs: ids.join(',') });
      const labels = result.runs.map(r => r.run_id);
      const names = result.runs.map(r => (r.name ? `${r.name} ${r.run_id.slice(0, 6)}` : r.run_id));
      const parts: HTMLElement[] = [el('h3', '', `Compare ${names.join(' → ')}`)];
      const params = Object.entries(result.params);
      parts.push(
        el('h4', '', params.length ? 'Params that differ' : 'Params: all the same'),
        table(['param', ...names], params.map(([k, vals]) => [k, ...labels.map(l => value(vals[l]))]))
      );
      const metrics = Object.entries(result.metrics);
      parts.push(
        el('h4', '', 'Metrics'),
        table(
          ['metric', ...names],
          metrics.map(([k, m]) => [
            k,
            ...labels.map(l => {
              const cell = el('span', l === m.best ? 'nbmlops-best' : '', value(m.values[l]));
              if (l === m.best) {
                cell.title = m.lower_is_better ? 'best (lower is better)' : 'best (higher is better)';
              }
              return cell;
            })
          ])
        )
      );
      const datasets = Object.entries(result.datasets);
      if (datasets.length) {
        parts.push(
          el('h4', '', 'Datasets'),
          table(['dataset', 'same in all'], datasets.map(([k, d]) => [k, d.same ? 'yes' : 'no']))
        );
      }
      for (const diff of result.source_diffs) {
        parts.push(el('h4', '', `Cell source: ${diff.a} → ${diff.b}`), diffView(diff.lines));
      }
      this.detail.replaceChildren(...parts);
    } catch (error) {
      this.detail.replaceChildren(el('div', 'nbmlops-error', (error as Error).message));
    }
  }
}
