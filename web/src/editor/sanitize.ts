// Documentation from a language server is written by whoever wrote the workspace's code (a
// docstring is an attacker's text): it is rendered from Markdown to HTML by the LSP client,
// then cut down here to harmless elements and attributes before it reaches the page.

const ALLOWED = new Set([
  'P', 'PRE', 'CODE', 'EM', 'STRONG', 'B', 'I', 'A', 'UL', 'OL', 'LI', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6',
  'SPAN', 'DIV', 'BR', 'HR', 'BLOCKQUOTE', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'DEL', 'SUP', 'SUB',
]);

function clean(node: ParentNode): void {
  for (const child of [...node.children]) {
    if (!ALLOWED.has(child.tagName)) {
      // Unknown elements go with their content when it could be active, else keep the text.
      if (['SCRIPT', 'STYLE', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'TEMPLATE', 'FORM'].includes(child.tagName)) child.remove();
      else child.replaceWith(document.createTextNode(child.textContent ?? ''));
      continue;
    }
    for (const attr of [...child.attributes]) {
      // Classes only as the code highlighter makes them (ͼ…): the IDE's own classes would let
      // documentation draw the IDE's dialogs.
      const keep = (attr.name === 'class' && attr.value.split(/\s+/).every((c) => /^ͼ[\w-]*$/.test(c) || c === '')) || (attr.name === 'href' && child.tagName === 'A' && /^https?:\/\//i.test(attr.value));
      if (!keep) child.removeAttribute(attr.name);
    }
    if (child.tagName === 'A') {
      child.setAttribute('target', '_blank');
      child.setAttribute('rel', 'noopener noreferrer');
    }
    clean(child);
  }
}

export function sanitizeHTML(html: string): string {
  // A template's content is parsed inert: no image loads, no handler runs while cleaning.
  // Cleaned there too, and serialized from there: nothing of it is adopted by the page first.
  const template = document.createElement('template');
  template.innerHTML = html;
  clean(template.content);
  return template.innerHTML;
}
