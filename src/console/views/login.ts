import { html } from 'hono/html';
import { bare, type H } from './common.ts';

export function loginPage(base: string, error?: string): H {
  return bare(
    base,
    'Log in',
    html`<div class="card login"><h1>ringfence console</h1>
<p class="note">Log in with your admin token. The token is checked once and never stored: the session keeps only who you are and your roles.</p>
${error ? html`<div class="flash error" role="alert">${error}</div>` : ''}
<form method="post" action="${base}/login"><label for="token">admin token</label>
<input type="password" id="token" name="token" autocomplete="off" required autofocus>
<button type="submit">Log in</button></form></div>`,
  );
}
