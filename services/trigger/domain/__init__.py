"""Pure rules of the trigger service: which rules match an event, who is asked, when, over which
channel, and why not. No I/O here: plain data in, plain data out. ``conditions`` (the condition
trees), ``model`` (the data and the words for it), ``policy`` (frequency caps, quiet hours) and
``decisions`` (the verdicts). Import from the module; this package re-exports nothing."""
