import { z } from 'zod';
import { bool, int, multiline, opt, text } from '../../entities/fields.ts';
import { headerValue, kongHeaderName } from '../http-fields.ts';
import type { PluginDefinition } from '../types.ts';

export const requestTerminationConfig = z.strictObject({
  status_code: int(100, 599).default(503).describe('Status of the answer'),
  message: opt(text()).describe('Message of a JSON answer {"message": …} (exclusive with body and content_type)'),
  content_type: opt(headerValue()).describe('Content-Type of body'),
  body: opt(multiline()).describe('Raw body of the answer'),
  echo: bool().default(false).describe('Answer with a JSON copy of the request (debugging)'),
  trigger: opt(kongHeaderName()).describe('Terminate only requests carrying this header or query argument'),
}).superRefine((c, ctx) => {
  // Kong's entity checks, with its messages.
  const present = (v: string | null) => v != null && v !== '';
  if (present(c.message) && (present(c.content_type) || present(c.body))) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: 'message cannot be used with content_type or body' });
  }
  if (present(c.content_type) && !present(c.body)) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: 'content_type requires a body' });
  }
  if (c.echo && (present(c.content_type) || present(c.body))) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: 'echo cannot be used with content_type and body' });
  }
});
export type RequestTerminationConfig = z.infer<typeof requestTerminationConfig>;

export const requestTermination: PluginDefinition = { name: 'request-termination', priority: 2, configSchema: requestTerminationConfig };
