// GET /v1/models and GET /v1/models/{id}: the model this server serves, and its LoRA adapters (each
// a model of its own name, as vLLM lists them: a request's "model" picks one).
import type * as http from 'node:http';
import type { ChatModel } from '../chat/engine.js';
import type { ServerContext } from './context.js';
import { ApiError } from './errors.js';
import { json } from './http.js';

const model = ({ cm, created }: ServerContext, id = cm.name) => ({ id, object: 'model', created, owned_by: 'qwen-ts', ...(id !== cm.name && { root: id, parent: cm.name }) });

const notFound = (id: string) => new ApiError(404, `The model '${id}' does not exist`, 'model', 'model_not_found', 'invalid_request_error');

export function listModels(ctx: ServerContext, res: http.ServerResponse): void {
  json(res, 200, { object: 'list', data: [model(ctx), ...(ctx.cm.adapters ?? []).map((a) => model(ctx, a))] });
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
  if (id !== ctx.cm.name && !ctx.cm.adapters?.includes(id)) throw notFound(id);
  json(res, 200, model(ctx, id));
}

/**
 * The LoRA adapter a request's "model" names (vLLM's convention; readBody has checked it is the
 * model's or an adapter's name): an adapter's name picks it, the model's name none (adapter 0).
 */
export function requestAdapter(cm: ChatModel, body: Record<string, unknown>): { adapter?: number } {
  const i = cm.adapters?.indexOf(body.model as string) ?? -1;
  return cm.adapters?.length ? { adapter: i + 1 } : {};
}

/** The model name a response reports: the adapter's when the request picked one. */
export const servedName = (cm: ChatModel, adapter: number | undefined) => (adapter ? cm.adapters![adapter - 1]! : cm.name);

/** Endpoints that run no generation (embeddings, rerank) take the base model only: an adapter's name is a 400, not silently the base. */
export function baseModelOnly(cm: ChatModel, body: Record<string, unknown>, what: string): void {
  if (requestAdapter(cm, body).adapter) throw new ApiError(400, `'${String(body.model)}' is a LoRA adapter; ${what} use the base model '${cm.name}'`, 'model', 'model_not_supported');
}
