// The person's menu at the right of the top bars: who is signed in, their usage, the account
// pages and signing out. A menu button: Enter, Space or the arrows open it, the arrows move,
// Escape closes it and gives focus back to the button.
import { useEffect, useId, useRef, useState } from 'react';
import { accounts } from '../api/accounts';
import { LOGIN_PATH } from '../api/auth';
import type { Usage } from '../api/types';
import { Icon, notify } from '../app/feedback';
import { navigate } from '../app/router';
import { ROLE_LABEL, hasSignIn, useAccount } from './account';
import { Avatar } from './Avatar';
import { errorText, usageLines } from './format';

/** Ends the session on the server, then shows the sign-in page (a full load forgets everything). */
export async function signOut(): Promise<void> {
  try {
    await accounts.logout();
  } catch (e) {
    notify(`Could not sign out: ${errorText(e)}`, 'error');
    return;
  }
  location.replace(LOGIN_PATH);
}

export function UserMenu() {
  const account = useAccount();
  const [open, setOpen] = useState(false);
  const [usage, setUsage] = useState<Usage | null>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const menuRef = useRef<HTMLDivElement>(null);
  const menuId = useId();
  /** Which item gets focus when the menu opens: the first, or the last (ArrowUp). */
  const focusOnOpen = useRef<'first' | 'last'>('first');

  const items = () => [...(menuRef.current?.querySelectorAll<HTMLElement>('[role=menuitem]') ?? [])];

  useEffect(() => {
    if (!open) return;
    const list = items();
    (focusOnOpen.current === 'last' ? list[list.length - 1] : list[0])?.focus();
    // Usage is current when the menu opens (someone may have created a workspace since).
    let live = true;
    accounts
      .usage()
      .then((u) => live && setUsage(u))
      .catch(() => {
        /* the menu works without it */
      });
    const down = (e: MouseEvent) => {
      const t = e.target as Node;
      if (!menuRef.current?.contains(t) && !buttonRef.current?.contains(t)) setOpen(false);
    };
    window.addEventListener('mousedown', down);
    return () => {
      live = false;
      window.removeEventListener('mousedown', down);
    };
  }, [open]);

  const user = account.user;
  if (!user) return null;
  const signIn = hasSignIn(account);

  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) buttonRef.current?.focus();
  };

  const onButtonKey = (e: React.KeyboardEvent) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      focusOnOpen.current = e.key === 'ArrowUp' ? 'last' : 'first';
      setOpen(true);
    }
  };

  const onMenuKey = (e: React.KeyboardEvent) => {
    const list = items();
    const i = list.indexOf(document.activeElement as HTMLElement);
    const to = (n: number) => list[(n + list.length) % list.length]?.focus();
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      to(i + 1);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      to(i - 1);
    } else if (e.key === 'Home') {
      e.preventDefault();
      to(0);
    } else if (e.key === 'End') {
      e.preventDefault();
      to(list.length - 1);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close(true);
    } else if (e.key === 'Tab') {
      setOpen(false);
    }
  };

  const link = (to: string, label: string, testId: string) => (
    <a
      href={to}
      role="menuitem"
      tabIndex={-1}
      className="menu-item"
      data-testid={testId}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        close(false);
        navigate(to);
      }}
    >
      {label}
    </a>
  );

  return (
    <div className="user-menu">
      <button
        ref={buttonRef}
        type="button"
        className="user-menu-button"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? menuId : undefined}
        title={`${user.username} (${ROLE_LABEL[user.role] ?? user.role})`}
        data-testid="user-menu-button"
        onClick={() => {
          focusOnOpen.current = 'first';
          setOpen((o) => !o);
        }}
        onKeyDown={onButtonKey}
      >
        <Avatar username={user.username} />
        <span className="user-menu-name">{user.username}</span>
        <span className="sr-only">
          {' '}
          ({ROLE_LABEL[user.role] ?? user.role}): account menu
        </span>
        <Icon name="chevronDown" size={12} />
      </button>
      {open && (
        <div ref={menuRef} id={menuId} className="context-menu user-menu-popup" role="menu" aria-label="Account" onKeyDown={onMenuKey} data-testid="user-menu">
          <div className="user-menu-head">
            <Avatar username={user.username} size={32} />
            <div className="user-menu-who">
              <strong data-testid="user-menu-username">{user.username}</strong>
              <span className="muted" data-testid="user-menu-role">
                {ROLE_LABEL[user.role] ?? user.role}
              </span>
            </div>
          </div>
          {usage && (
            <ul className="user-menu-usage" aria-label="Usage" data-testid="user-menu-usage">
              {usageLines(usage)
                .filter((l) => l.key === 'workspaces' || l.key === 'running' || l.key === 'storageMib')
                .map((l) => (
                  <li key={l.key}>{l.text}</li>
                ))}
            </ul>
          )}
          <div className="menu-separator" role="separator" />
          {signIn && link('/settings/sessions', 'Sessions', 'menu-sessions')}
          {signIn && link('/settings/tokens', 'API tokens', 'menu-tokens')}
          {user.role === 'admin' && (
            <>
              {signIn && <div className="menu-separator" role="separator" />}
              {link('/admin/users', 'Users', 'menu-users')}
              {link('/admin/audit', 'Audit log', 'menu-audit')}
              {link('/admin/system', 'System', 'menu-system')}
            </>
          )}
          {signIn && (
            <>
              <div className="menu-separator" role="separator" />
              <button
                type="button"
                role="menuitem"
                tabIndex={-1}
                className="menu-item"
                data-testid="menu-sign-out"
                onClick={() => {
                  close(false);
                  void signOut();
                }}
              >
                Sign out
              </button>
            </>
          )}
        </div>
      )}
    </div>
  );
}
