project = 'watcher-failpredict'
copyright = 'watcher-failpredict developers'
extensions = []
master_doc = 'index'
exclude_patterns = []
html_theme = 'alabaster'
