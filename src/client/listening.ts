import { channelName, validatePayload, type ChannelLike } from "../channels.js";
import { ValidationError } from "../api/errors.js";
import type { Listener, Listeners } from "../listeners.js";

/**
 * See Troupe.listen: checks the channel and handler, then registers with this process's
 * listeners (`listeners()` throws NotStartedError when the Troupe is not running). Each
 * message's data is validated by the channel's schema before the handler sees it.
 */
export function listen<T>(ch: ChannelLike<T>, handler: Listener<T>, listeners: () => Listeners): () => void {
  const name = channelName(ch);
  if (typeof handler !== "function") throw new ValidationError("listen() needs a handler function");
  return listeners().listen<T>(name, (msg) => handler({ ...msg, data: validatePayload(ch, msg.data) }));
}
