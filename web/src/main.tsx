import { createRoot } from 'react-dom/client';
import { App, preloadIde } from './app/App';
import './app/styles.css';
import './app/ide-extras.css';
import './accounts/accounts.css';
import { applyTheme } from './app/theme';

// The person's theme before the first paint (no flash of the other one).
applyTheme();

// No StrictMode: terminals and sockets are imperative resources that must
// not be opened twice.
// On an IDE URL, fetch the IDE first (index.html shows a loading line meanwhile): cheaper
// than a Suspense fallback, which React holds for 300 ms once it is on screen.
const ready = window.location.pathname.startsWith('/w/') ? preloadIde().catch(() => undefined) : Promise.resolve();
void ready.then(() => createRoot(document.getElementById('root')!).render(<App />));
