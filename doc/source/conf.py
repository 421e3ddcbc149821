project = 'watcher-failpredict'
copyright = 'watcher-failpredict developers'
# reno renders releasenotes/notes/*.yaml (doc/source/releasenotes.rst).
extensions = ['reno.sphinxext']
master_doc = 'index'
exclude_patterns = []
html_theme = 'alabaster'
