import { createRoot } from 'react-dom/client';
import { App } from './app/App';
import './app/styles.css';

// No StrictMode: terminals and sockets are imperative resources that must
// not be opened twice.
createRoot(document.getElementById('root')!).render(<App />);
