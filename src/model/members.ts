/**
 * A decorator's view of an interface: every member, optional ones included,
 * must be named. A decorator built as `EveryMember<RuntimePort>` stops
 * compiling when the port gains a member, so it can never drop one silently
 * (an optional one forwarded as `undefined` says "this runtime has none").
 * `keyof Required<T>` rather than `keyof T`: a mapped type over `keyof T`
 * keeps T's `?` modifiers, and so would let a decorator leave a member out.
 */
export type EveryMember<T> = { [K in keyof Required<T>]: T[K] };
