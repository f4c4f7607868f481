// The nbmlops JupyterLab (and Notebook 7) extension: a runs sidebar, a badge on each tracked cell,
// and a link that gives the kernel the notebook as it is in memory when a %%track cell runs.
import { JupyterFrontEnd, JupyterFrontEndPlugin, ILayoutRestorer } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { NotebookBadges } from './badges';
import { KernelLink } from './kernel';
import { RunsSidebar } from './sidebar';

interface INotebookParts {
  badges: NotebookBadges;
  link: KernelLink;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbmlops:plugin',
  description: 'nbmlops: runs sidebar, per-cell run badges and notebook snapshots for runs.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker, restorer: ILayoutRestorer | null) => {
    const sidebar = new RunsSidebar(notebooks, path =>
      void app.commands.execute('docmanager:open', { path })
    );
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);

    const parts = new WeakMap<NotebookPanel, INotebookParts>();
    notebooks.widgetAdded.connect((_, panel) => {
      const badges = new NotebookBadges(panel);
      parts.set(panel, { badges, link: new KernelLink(panel) });
      void panel.context.ready.then(() => badges.refresh());
      panel.context.pathChanged.connect(() => void badges.refresh());
      panel.disposed.connect(() => {
        const own = parts.get(panel);
        own?.badges.dispose();
        own?.link.dispose();
        parts.delete(panel);
      });
    });

    const panelOf = (notebook: unknown): NotebookPanel | undefined =>
      notebooks.find(panel => panel.content === notebook);

    NotebookActions.executionScheduled.connect((_, { notebook, cell }) => {
      const panel = panelOf(notebook);
      if (panel && cell.model.type === 'code') {
        parts.get(panel)?.link.beforeExecute(cell.model.sharedModel.getSource());
      }
    });
    NotebookActions.executed.connect((_, { notebook }) => {
      const panel = panelOf(notebook);
      if (panel) {
        void parts.get(panel)?.badges.refresh();
      }
      void sidebar.refresh();
    });
  }
};

export default plugin;
