# The data-directory rule: octal bits for find, the same bits spelt for chmod.
DD_MODE={{ c.datadir.mode }}
DD_DIR_NEEDS={{ c.datadir.dir_needs | sh }}
DD_FILE_NEEDS={{ c.datadir.file_needs | sh }}
DD_FORBIDS={{ c.datadir.forbids | sh }}
DD_BULK_THRESHOLD={{ c.datadir.bulk_threshold }}
DD_DIR_FIX={{ c.datadir.dir_fix | sh }}
DD_FILE_FIX={{ c.datadir.file_fix | sh }}
DD_TREE_FIX={{ c.datadir.tree_fix | sh }}
DD_REVOKE={{ c.datadir.revoke | sh }}
