<?php
/**
 * Tiny JSON helper for scripts/wordpress-e2e.sh (bash has no JSON):
 *   php json.php get FILE KEY            print one field ('' when missing or null)
 *   php json.php set FILE K=V K:=JSON... merge fields (K=V string, K:=V raw JSON), write FILE
 *                                        atomically and print the object on one line
 *   php json.php merge FILE JSONTEXT...  merge the given JSON objects into FILE, same output
 */
[$self, $cmd, $file] = array_pad($argv, 3, null);
$args = array_slice($argv, 3);
if (!$cmd || !$file) {
    fwrite(STDERR, "usage: json.php get|set|merge FILE ...\n");
    exit(2);
}
$data = [];
if (is_file($file)) {
    $data = json_decode(file_get_contents($file), true);
    if (!is_array($data)) {
        fwrite(STDERR, "json.php: $file is not a JSON object\n");
        exit(1);
    }
}
if ($cmd === 'get') {
    $v = $data[$args[0] ?? ''] ?? null;
    echo is_scalar($v) ? (is_bool($v) ? ($v ? 'true' : 'false') : $v) : ($v === null ? '' : json_encode($v));
    exit(0);
}
foreach ($args as $arg) {
    if ($cmd === 'merge') {
        $more = json_decode($arg, true);
        if (!is_array($more)) {
            fwrite(STDERR, "json.php: not a JSON object: $arg\n");
            exit(1);
        }
        $data = array_merge($data, $more);
        continue;
    }
    if (preg_match('/^([A-Za-z0-9_]+):=(.*)$/s', $arg, $m)) {
        $data[$m[1]] = json_decode($m[2], true);
    } elseif (preg_match('/^([A-Za-z0-9_]+)=(.*)$/s', $arg, $m)) {
        $data[$m[1]] = $m[2];
    } else {
        fwrite(STDERR, "json.php: bad argument: $arg\n");
        exit(2);
    }
}
$text = json_encode($data, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
$tmp = $file . '.tmp' . getmypid();
file_put_contents($tmp, $text . "\n");
chmod($tmp, 0600);
rename($tmp, $file);
echo $text, "\n";
