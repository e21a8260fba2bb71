"""Alert views: the banner, the alerts page and desktop notifications."""
