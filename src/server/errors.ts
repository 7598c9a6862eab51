// OpenAI-style API errors: {"error": {"message", "type", "param", "code"}} with an HTTP status.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status === 401 ? 'authentication_error' : status === 404 ? 'not_found_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }
  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badParam = (param: string, message: string, code: string | null = 'invalid_value') => new ApiError(400, message, param, code);
