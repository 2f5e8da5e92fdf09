// The sidebar's views, one shown at a time, each kept mounted (the tree keeps its state,
// search its query and results).
import { Children } from 'react';
import { Icon } from './feedback';

export type SidebarView = 'files' | 'search' | 'scm';

const VIEWS: { id: SidebarView; label: string; icon: string; title: string }[] = [
  { id: 'files', label: 'Explorer', icon: 'file', title: 'Explorer' },
  { id: 'search', label: 'Search', icon: 'search', title: 'Search in files (Ctrl+Shift+F)' },
  { id: 'scm', label: 'Git', icon: 'split', title: 'Source control (Ctrl+Shift+G)' },
];

/** `children` are the views in the order of VIEWS. */
export function SidebarViews({ view, onView, children }: { view: SidebarView; onView: (v: SidebarView) => void; children: React.ReactNode }) {
  const panes = Children.toArray(children);
  return (
    <>
      <div className="sidebar-switch" role="tablist" aria-label="Sidebar views">
        {VIEWS.map((v) => (
          <button
            key={v.id}
            type="button"
            role="tab"
            id={`sidebar-tab-${v.id}`}
            aria-selected={view === v.id}
            aria-controls={`sidebar-view-${v.id}`}
            className={`sidebar-switch-tab${view === v.id ? ' active' : ''}`}
            onClick={() => onView(v.id)}
            data-testid={`sidebar-${v.id}`}
            title={v.title}
          >
            <Icon name={v.icon} size={14} /> {v.label}
          </button>
        ))}
      </div>
      {VIEWS.map((v, i) => (
        <div key={v.id} id={`sidebar-view-${v.id}`} role="tabpanel" aria-labelledby={`sidebar-tab-${v.id}`} className="sidebar-view" hidden={view !== v.id}>
          {panes[i]}
        </div>
      ))}
    </>
  );
}
