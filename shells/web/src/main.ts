import './theme.css';
import './app-shell.js';
