"""The dashboard: pages for team admins (Django staff users) over the apps' services and
selectors. Parts of each page are live panels that a websocket refreshes while the page is
visible (flocksite.dashboard.live), with polling when the websocket cannot connect."""
