import { listMethods } from '@deltatune/core';
import type { Command } from '../commands/command';
import { flagLines } from './flag-help';
import { methodLines } from './method-help';

/**
 * `deltatune <command> --help`: what the command does, every flag it takes, and, for a command that
 * attaches methods, the methods registered now (plugins of the same line included) with their options.
 */
export function commandHelp(command: Command): string {
  const lines = [command.about, '', 'flags:', ...flagLines(command.flags)];
  if (command.listsMethods) lines.push('', command.listsMethods, ...methodLines(listMethods()));
  return lines.join('\n');
}
