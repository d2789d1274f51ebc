import type { DeltaMethod, OptionField } from '@deltatune/core';
import { STUDIO_METHODS, SUGGESTED_OPTIONS } from './methods';
import type { MethodChoice } from './protocol';

function el<E extends HTMLElement>(tag: string, props: Partial<Record<string, unknown>> = {}, ...children: (Node | string)[]): E {
  const e = Object.assign(document.createElement(tag), props) as unknown as E;
  e.append(...children);
  return e;
}

/** One input per option, drawn from the method's schema; values are the CLI's `--opt` strings. */
function optionInput(method: DeltaMethod<any>, key: string, field: OptionField): HTMLElement {
  const suggested = SUGGESTED_OPTIONS[method.name]?.[key];
  const fallback = field.default === undefined ? '' : Array.isArray(field.default) ? field.default.join(',') : String(field.default);
  const name = `${method.name}.${key}`;
  let input: HTMLInputElement | HTMLSelectElement;
  if (Array.isArray(field.type)) {
    input = el<HTMLSelectElement>('select', { name });
    input.append(...field.type.map((v) => el('option', { value: String(v), selected: String(v) === (suggested ?? fallback) }, String(v))));
  } else if (field.type === 'boolean') {
    input = el<HTMLInputElement>('input', { type: 'checkbox', name, checked: (suggested ?? fallback) === 'true' });
  } else {
    input = el<HTMLInputElement>('input', { type: 'text', name, value: suggested ?? '', placeholder: fallback || '(none)' });
  }
  input.dataset.option = key;
  input.dataset.default = fallback;
  return el('label', { className: 'option', title: field.help }, el('span', {}, key), input, el('small', {}, field.help));
}

/** The methods as checkboxes, each with its option form shown while checked. */
export class MethodPicker {
  private readonly boxes = new Map<string, { check: HTMLInputElement; form: HTMLElement }>();

  constructor(container: HTMLElement) {
    for (const method of STUDIO_METHODS) {
      const check = el<HTMLInputElement>('input', {
        type: 'checkbox',
        name: `method.${method.name}`,
        value: method.name,
        checked: method.name === 'lora',
      });
      const form = el('div', { className: 'options' });
      form.append(...Object.entries(method.options.fields).map(([k, f]) => optionInput(method, k, f as OptionField)));
      form.hidden = !check.checked;
      check.addEventListener('change', () => (form.hidden = !check.checked));
      container.append(
        el(
          'fieldset',
          { className: 'method' },
          el('legend', {}, el('label', {}, check, ` ${method.name}`), el('small', {}, ` ${method.description} (${method.packageName})`)),
          form,
        ),
      );
      this.boxes.set(method.name, { check, form });
    }
  }

  /** The checked methods with their options; each set of options is checked by the method's schema here (throws its error). */
  choices(): MethodChoice[] {
    const out: MethodChoice[] = [];
    for (const method of STUDIO_METHODS) {
      const { check, form } = this.boxes.get(method.name)!;
      if (!check.checked) continue;
      const options: Record<string, string> = {};
      for (const input of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('[data-option]')) {
        const key = input.dataset.option!;
        const value = input instanceof HTMLInputElement && input.type === 'checkbox' ? String(input.checked) : input.value.trim();
        if (value !== '' && value !== input.dataset.default) options[key] = value;
      }
      method.options.parse(options);
      out.push({ method: method.name, options });
    }
    return out;
  }
}
