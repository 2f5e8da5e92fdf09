// The frame of the account pages: the top bar, a list of the pages (a row on phones), and
// the page itself, or why it is not there for this person.
import { useEffect } from 'react';
import { ACCOUNT_PAGES, linkHandler, type AccountPage } from '../app/router';
import { TopBar } from '../workspaces/Home';
import { hasSignIn, useAccount, type Account } from './account';

const TITLES: Record<AccountPage, string> = {
  sessions: 'Sessions',
  tokens: 'API tokens',
  users: 'Users',
  audit: 'Audit log',
  system: 'System',
};

const PATHS = Object.fromEntries(Object.entries(ACCOUNT_PAGES).map(([path, page]) => [page, path])) as Record<AccountPage, string>;

function isAdminPage(page: AccountPage): boolean {
  return page === 'users' || page === 'audit' || page === 'system';
}

/** Why `page` is not for this person, or null when it is. */
function refusal(page: AccountPage, a: Account): string | null {
  if (!a.user) return 'This server has no accounts.';
  if (isAdminPage(page)) return a.user.role === 'admin' ? null : 'Only administrators can see this page.';
  if (!hasSignIn(a)) return 'This server does not sign people in (it runs with --auth none), so there are no sessions or tokens.';
  return null;
}

export function AccountLayout({ page, children }: { page: AccountPage; children: React.ReactNode }) {
  const account = useAccount();
  useEffect(() => {
    document.title = `${TITLES[page]} · cove`;
  }, [page]);
  const user = account.user;
  const pages = (Object.keys(TITLES) as AccountPage[]).filter((p) => !refusal(p, account));
  const why = account.loaded ? refusal(page, account) : null;

  return (
    <div className="home account">
      <TopBar />
      <div className="account-layout">
        {pages.length > 0 && (
          <nav className="account-nav" aria-label="Account pages">
            {pages.map((p) => (
              <a key={p} href={PATHS[p]} onClick={linkHandler(PATHS[p])} aria-current={p === page ? 'page' : undefined} className={p === page ? 'current' : undefined}>
                {TITLES[p]}
              </a>
            ))}
          </nav>
        )}
        <main className="account-main" data-testid={`page-${page}`}>
          <h1>{TITLES[page]}</h1>
          {!account.loaded && <p className="muted">Loading…</p>}
          {why && (
            <p className="muted" data-testid="page-refused">
              {why}{' '}
              <a href="/" onClick={linkHandler('/')}>
                Back to your workspaces
              </a>
            </p>
          )}
          {account.loaded && !why && user && children}
        </main>
      </div>
    </div>
  );
}
