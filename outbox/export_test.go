package outbox

// Hook calls f at every crash point the relay reaches (tests block or
// count there).
func Hook(f func(point string)) Opt { return opt(func(c *cfg) { c.hook = f }) }

// HighWater makes the relay the wrong design the out-of-order test must
// catch: it keeps the highest id it published and reads only ids above.
func HighWater() Opt { return opt(func(c *cfg) { c.highWater = true }) }
