//! Database engines: probe, promote, fence, repoint, dump and restore commands.
