// What an unknown UI path shows (the server answered the shell with 404).
import {h, replace} from '../dom.js';

export function render(main, {message} = {}, ctx) {
  ctx.setTitle('Not found');
  ctx.setCrumbs([{label: 'Not found'}]);
  replace(main,
    h('h1', null, 'Not found'),
    h('p', null, message || 'There is no page at this address.'),
    h('p', null, 'Pages are: ', h('a', {href: '/'}, 'all projects'), ', a project (/projects/<forge>/<owner>/<repo>), an eval (/evals/<eval>) and a job (/evals/<eval>/jobs/<job>).'));
}
