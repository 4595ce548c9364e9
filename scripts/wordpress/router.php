<?php
/**
 * Router for `php -S` (scripts/wordpress-e2e.sh): serve existing files as they are and send every
 * other request to WordPress's index.php, the way Apache's mod_rewrite rules would. Without it
 * pretty URLs such as /wp-json/... or /category/news/ answer 404.
 */
$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/');
$uri_path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$path = is_string($uri_path) ? rawurldecode($uri_path) : '/';

if ($path !== '/' && strpos($path, "\0") === false && strpos($path, '..') === false) {
    $full = $root . $path;
    if (is_file($full)) {
        return false; // static file or a real PHP entry point (wp-login.php, wp-admin/*.php, ...)
    }
    if (is_dir($full)) {
        if (substr($path, -1) !== '/') {
            $query = parse_url($_SERVER['REQUEST_URI'], PHP_URL_QUERY);
            header('Location: ' . $uri_path . '/' . ($query ? '?' . $query : ''), true, 301);
            return true;
        }
        if (is_file($full . 'index.php')) {
            return false; // e.g. /wp-admin/
        }
    }
}

// Everything else is WordPress's front controller.
unset($_SERVER['PATH_INFO'], $_SERVER['ORIG_PATH_INFO']);
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
chdir($root);
require $root . '/index.php';
