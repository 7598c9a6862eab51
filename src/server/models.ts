// GET /v1/models and GET /v1/models/{id}: the one model this server serves.
import type * as http from 'node:http';
import type { ServerContext } from './context.js';
import { ApiError } from './errors.js';
import { json } from './http.js';

const model = ({ cm, created }: ServerContext) => ({ id: cm.name, object: 'model', created, owned_by: 'qwen-ts' });

export function listModels(ctx: ServerContext, res: http.ServerResponse): void {
  json(res, 200, { object: 'list', data: [model(ctx)] });
}

/** `id`: the path after /v1/models/, still percent-encoded (model names hold slashes: Qwen/Qwen3-8B). */
export function getModel(ctx: ServerContext, rawId: string, res: http.ServerResponse): void {
  let id = rawId;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    /* not valid percent-encoding: compared as it is */
  }
  // OpenAI answers an unknown model with a 404 of type invalid_request_error
  if (id !== ctx.cm.name) throw new ApiError(404, `The model '${id}' does not exist`, 'model', 'model_not_found', 'invalid_request_error');
  json(res, 200, model(ctx));
}
