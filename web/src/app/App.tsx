import { Suspense, lazy, useEffect } from 'react';
import { setSignInNavigator } from '../api/auth';
import { AccountLayout } from '../accounts/AccountLayout';
import { AuditPage } from '../accounts/AuditPage';
import { Login } from '../accounts/Login';
import { SessionsPage } from '../accounts/SessionsPage';
import { SystemPage } from '../accounts/SystemPage';
import { TokensPage } from '../accounts/TokensPage';
import { UsersPage } from '../accounts/UsersPage';
import { Home } from '../workspaces/Home';
import { AskHost, Toasts } from './feedback';
import { linkHandler, matchRoute, navigate, usePath, type AccountPage } from './router';

// A session that ended sends the person to the sign-in page in-app: no reload, and the IDE
// keeps unsaved editor text in this browser as it unmounts (no "leave the page?" question).
setSignInNavigator((url) => navigate(url, true, true));

const ACCOUNT_PAGE: Record<AccountPage, () => React.ReactNode> = {
  sessions: () => <SessionsPage />,
  tokens: () => <TokensPage />,
  users: () => <UsersPage />,
  audit: () => <AuditPage />,
  system: () => <SystemPage />,
};

const Ide = lazy(() => import('./Ide'));

// The IDE module, when main.tsx loaded it before the first render (on /w/ URLs). Rendering
// it directly skips the Suspense fallback, which React keeps on screen for at least 300 ms
// once shown, long after the module has arrived.
let preloadedIde: typeof import('./Ide') | null = null;

/** Loads the IDE module ahead of the first render. */
export async function preloadIde(): Promise<void> {
  preloadedIde = await import('./Ide');
}

export function App() {
  const path = usePath();
  const route = matchRoute(path);

  useEffect(() => {
    if (route.name === 'home') document.title = 'Workspaces · cove';
  }, [route.name]);

  let page: React.ReactNode;
  switch (route.name) {
    case 'home':
      page = <Home />;
      break;
    case 'login':
      page = <Login />;
      break;
    case 'account':
      page = (
        <AccountLayout key={route.page} page={route.page}>
          {ACCOUNT_PAGE[route.page]()}
        </AccountLayout>
      );
      break;
    case 'ide':
      if (preloadedIde) {
        const Preloaded = preloadedIde.default;
        page = <Preloaded key={route.id} workspaceId={route.id} />;
        break;
      }
      page = (
        <Suspense fallback={<div className="page-loading" role="status">Loading the IDE…</div>}>
          <Ide key={route.id} workspaceId={route.id} />
        </Suspense>
      );
      break;
    default:
      page = (
        <main className="notfound">
          <h1>Page not found</h1>
          <p>
            <a href="/" onClick={linkHandler('/')}>
              Back to your workspaces
            </a>
          </p>
        </main>
      );
  }
  return (
    <>
      {page}
      <AskHost />
      <Toasts />
    </>
  );
}
