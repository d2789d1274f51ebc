import type { DeltaMethod } from '@deltatune/core';
import { adapterMethod } from '@deltatune/adapter';
import { bitfitMethod } from '@deltatune/bitfit';
import { doraMethod, loraMethod, veraMethod } from '@deltatune/lora';
import { lohaMethod, lokrMethod } from '@deltatune/lycoris';
import { prefixMethod, promptMethod } from '@deltatune/prefix';

/** The methods the page offers: the CLI's built-ins. Their option schemas draw the forms. */
export const STUDIO_METHODS: readonly DeltaMethod<any>[] = [
  loraMethod,
  doraMethod,
  veraMethod,
  lohaMethod,
  lokrMethod,
  adapterMethod,
  bitfitMethod,
  prefixMethod,
  promptMethod,
];

export function studioMethod(name: string): DeltaMethod<any> | undefined {
  return STUDIO_METHODS.find((m) => m.name === name);
}

/** The page's starting options per method: the demo's LoRA, else the method's own defaults. */
export const SUGGESTED_OPTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  lora: { r: '8', alpha: '16', targets: 'query,value,output.dense,intermediate.dense' },
};
