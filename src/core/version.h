#ifndef KV_CORE_VERSION_H
#define KV_CORE_VERSION_H

#define KV_VERSION "0.1.0"

#endif
